"""The training loop that adapting to a store (:mod:`.train`) and blind Gaussian pre-training
(:mod:`.pretrain`) share: Adam on the mean absolute or squared error between the model's
output and a target (over the pixels that ``pixel_filter`` keeps, :mod:`.losses`; pre-training
uses the squared error), the learning rate multiplied by
``gamma`` at milestones.

The two differ only in where their (input, target) batches come from: a :class:`Batches`.
Every run writes ``log.csv`` (one row per step: loss, lr, samples seen; and, when given a
:class:`Validation`, a row every ``validate_every`` steps with the clean-free validation loss
and, where clean tiles exist, the PSNR), ``last.pt`` after every epoch (self-describing and
enough to resume exactly: weights, optimizer, scheduler, epoch, step, random states, and the
caller's description of the run), ``best.pt`` (the lowest validation loss so far),
``final.pt`` at the end and ``curves.png``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from pcst_prep.errors import InputError
from pcst_prep.progress import Progress

from .checkpoints import load_model, save_checkpoint
from .losses import FilteredLoss
from .metrics import psnr
from .models import model_name

LOG_FIELDS = ["epoch", "step", "loss", "lr", "samples", "val_loss", "val_psnr", "seconds"]


class Batches(Protocol):
    """A source of training batches: (input, target) float32 tensors [B, C, H, W]."""

    batch_size: int

    def epoch(self, epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``; the same ones whenever it is asked for, so that a
        resumed run sees what an uninterrupted one would."""


class Validation(Protocol):
    """Held-out data a run is judged on."""

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """``{"val_loss": float, "val_psnr": float or None}``; the model's mode is kept."""


def resolve_device(name: str) -> torch.device:
    """A torch device from "auto" (CUDA when there is one), "cpu", "cuda" or "cuda:N"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but this torch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int):
    """Seed torch, NumPy's and Python's global random generators."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _rng_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resumed(out_dir, resume: str | None) -> tuple[nn.Module | None, dict | None]:
    """(model, checkpoint) that a run continues from, or (None, None) to start afresh.

    ``resume``: None, "auto" (``out_dir/last.pt`` when there is one) or a checkpoint path.
    """
    if resume == "auto":
        path = Path(out_dir) / "last.pt"
        if not path.exists():
            return None, None
    elif resume:
        path = Path(resume)
    else:
        return None, None
    model, state = load_model(path)
    if "optimizer" not in state:
        raise InputError("not a training checkpoint (no optimizer state to resume)", path)
    return model, state


def fit(model: nn.Module, batches: Batches, out_dir, **settings) -> dict:
    """Train ``model`` (already on ``device``) for ``total_steps`` steps of ``batches``, in
    ``out_dir`` (created); the settings and the result are :func:`_fit`'s.

    A run that fails or is interrupted before its first ``last.pt`` leaves nothing behind: the
    files it wrote are removed, and ``out_dir`` too if it made it. Once there is a
    ``last.pt``, what is there stays, to be continued with ``--resume``.
    """
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    try:
        return _fit(model, batches, out_dir, **settings)
    except BaseException as exc:
        _leave_no_half_run(out_dir, made, before)
        if isinstance(exc, OSError) and exc.filename is None:  # a write to log.csv, say
            raise OSError(exc.errno, exc.strerror or str(exc), str(out_dir)) from exc
        raise


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bfloat16 on a CPU that computes it natively (AVX512-BF16 or AMX: a training
    step about 3x faster at equal PSNR), else float32, also on a GPU: the trainer's steps (16
    tiles of 50 px) are too small to gain there, and an H100 ran them faster in float32
    (channels-last, TF32 convolutions by cuDNN's default) than in bfloat16
    (``benchmarks/bench_train_step.py --device cuda``, benchmarks/README.md)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.type != "cpu":
        return "float32"
    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


def _autocast(precision: str, device: torch.device):
    """A factory of the forward pass's autocast context for a resolved ``precision``."""
    if precision == "float32":
        return contextlib.nullcontext
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


def _leave_no_half_run(out_dir: Path, made: bool, before: set):
    """After a failed run: temporary files go; without a ``last.pt`` so do the files the run
    wrote, and ``out_dir`` if the run made it."""
    for tmp in out_dir.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
    if not (out_dir / "last.pt").exists():
        for path in set(out_dir.iterdir()) - before:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        if made and not any(out_dir.iterdir()):
            out_dir.rmdir()


def _fit(model: nn.Module, batches: Batches, out_dir: Path, *, total_steps: int, lr: float,
         milestones: list[int], gamma: float, device: torch.device,
         resume_from: dict | None = None, validation: Validation | None = None,
         validate_every: int = 100, patience: int | None = None, log_every: int = 10,
         about: dict | None = None, progress: bool = True, desc: str = "train",
         keep_validated: bool = False, precision: str = "auto",
         pixel_filter: float = 0.0, loss: str = "mse") -> dict:
    """Train ``model`` (already on ``device``) for ``total_steps`` steps of ``batches``.

    Parameters
    ----------
    out_dir : run directory (it exists)
    milestones : steps after which the learning rate is multiplied by ``gamma``
    resume_from : the checkpoint dict (from :func:`resumed`) whose weights ``model`` holds
    validation : what to judge the model on every ``validate_every`` steps and at the end;
        the weights with the lowest validation loss are kept as ``best.pt``
    patience : stop once this many validations in a row did not improve on the best
    log_every : steps between writes of log.csv to disk (every row is logged)
    about : entries that every checkpoint carries to describe the run (configuration, data)
    keep_validated : also keep the weights of every validation, ``validated/step_NNNNNN.pt``
    precision : "float32", "bfloat16" for the forward pass under autocast (the weights, the
        loss and the optimizer stay float32), or "auto" (:func:`resolve_precision`); the model
        runs channels-last (``benchmarks/bench_train_step.py`` measures both, on a CPU and a GPU)
    pixel_filter : the loss leaves out target pixels whose residual energy exceeds this many
        times their tile's median (:class:`pcst_train.losses.FilteredLoss`; 0: every pixel)
    loss : "mae" (mean absolute error) or "mse" (mean squared error) against the targets

    Returns
    -------
    dict: final, best (paths of final.pt and best.pt, None without validation), log (path of
    log.csv), steps, epochs, seconds, before and after (the validation's figures, None
    without), best_step, stopped_early, device and precision (the forward pass's, resolved).
    """
    about = about or {}
    name = model_name(model)
    memory_format = torch.channels_last
    model.to(memory_format=memory_format)
    precision = resolve_precision(precision, device)
    autocast = _autocast(precision, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=gamma)
    epoch, step = 0, 0
    tracking = {"best_loss": None, "best_step": None, "since_best": 0}
    if resume_from is not None:
        optimizer.load_state_dict(resume_from["optimizer"])
        scheduler.load_state_dict(resume_from["scheduler"])
        epoch, step = resume_from["epoch"], resume_from["step"]
        tracking.update(resume_from.get("tracking", {}))
        _set_rng_state(resume_from["rng"])
    resumed_at = step if resume_from is not None else None
    log_path = out_dir / "log.csv"
    keep_rows = []
    if log_path.exists() and resume_from is not None:  # keep the rows up to the resumed step
        with open(log_path) as f:
            keep_rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    log = open(log_path, "w", newline="")
    writer = csv.DictWriter(log, fieldnames=LOG_FIELDS, restval="")
    writer.writeheader()
    writer.writerows(keep_rows)
    start = time.perf_counter()

    def validate() -> dict | None:
        if validation is None:
            return None
        figures = validation.evaluate(model, device)
        writer.writerow({"epoch": epoch, "step": step, "samples": step * batches.batch_size,
                         "val_loss": f"{figures['val_loss']:.8g}",
                         "val_psnr": "" if figures.get("val_psnr") is None
                         else f"{figures['val_psnr']:.4f}",
                         "seconds": f"{time.perf_counter() - start:.2f}"})
        log.flush()
        if keep_validated:
            (out_dir / "validated").mkdir(exist_ok=True)
            save_checkpoint(out_dir / "validated" / f"step_{step:06d}.pt", model, name,
                            epoch=epoch, step=step, validation=figures, **about)
        if tracking["best_loss"] is None or figures["val_loss"] < tracking["best_loss"]:
            tracking.update(best_loss=figures["val_loss"], best_step=step, since_best=0)
            save_checkpoint(out_dir / "best.pt", model, name, epoch=epoch, step=step,
                            validation=figures, **about)
        else:
            tracking["since_best"] += 1
        return figures

    before = validate() if step == 0 else None
    criterion = FilteredLoss(pixel_filter, loss=loss)
    bar = Progress(total_steps, desc, "step", initial=step, enabled=progress,
                   at_most=validation is not None and patience is not None)
    stopped_early = False
    try:
        while step < total_steps and not stopped_early:
            model.train()
            for inputs, targets in batches.epoch(epoch):
                if step >= total_steps:
                    break
                inputs = inputs.to(device).contiguous(memory_format=memory_format)
                targets = targets.to(device).contiguous(memory_format=memory_format)
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    outputs = model(inputs)
                loss = criterion(outputs.float(), targets, inputs)
                if not torch.isfinite(loss):
                    last = out_dir / "last.pt"
                    kept = (f"the last good checkpoint is {last}" if last.exists()
                            else "no checkpoint was written yet")
                    raise InputError(f"loss became {loss.item()} at step {step + 1}; stopped "
                                     f"({kept}); check the data or try a lower --lr")
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                writer.writerow({"epoch": epoch, "step": step, "loss": f"{loss.item():.6g}",
                                 "lr": f"{scheduler.get_last_lr()[0]:.6g}",
                                 "samples": step * batches.batch_size,
                                 "seconds": f"{time.perf_counter() - start:.2f}"})
                if step % log_every == 0:
                    log.flush()
                status = ("" if validation is None else _validation_status(tracking, patience))
                bar.update(postfix=f"loss {loss.item():.4g}{status}")
                if validation is not None and step % validate_every == 0 and step < total_steps:
                    validate()
                    if patience is not None and tracking["since_best"] >= patience:
                        stopped_early = True
                        break
            epoch += 1
            log.flush()
            save_checkpoint(out_dir / "last.pt", model, name, optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), epoch=epoch, step=step,
                            rng=_rng_state(), tracking=dict(tracking), **about)
        after = validate()
    finally:
        bar.close()
        log.close()
    final = save_checkpoint(out_dir / "final.pt", model, name, epoch=epoch, step=step,
                            validation=after, **about)
    plot_curves(log_path, out_dir / "curves.png")
    return {"final": final, "best": out_dir / "best.pt" if validation is not None else None,
            "log": log_path, "steps": step, "epochs": epoch,
            "seconds": time.perf_counter() - start, "before": before, "after": after,
            "best_step": tracking["best_step"], "best_loss": tracking["best_loss"],
            "stopped_early": stopped_early, "device": str(device), "precision": precision,
            "resumed_at": resumed_at}


def _validation_status(tracking: dict, patience: int | None) -> str:
    """The progress line's word on validation: the best loss so far and its step, and with
    ``patience`` how many validations in a row have not beaten it."""
    if tracking["best_loss"] is None:
        return ""
    status = f", val best {tracking['best_loss']:.4g} at step {tracking['best_step']}"
    if patience is not None:
        status += f" ({tracking['since_best']}/{patience} without a new best)"
    return status


@torch.no_grad()
def evaluate_tiles(model, pairs, device, batch: int = 16) -> float:
    """Mean PSNR (data range 1) of the model's output on (noisy, clean) tiles [n, C, S, S].

    Evaluates in eval mode and leaves the model in the mode it was in.
    """
    noisy, clean = pairs
    training = model.training
    model.eval()
    values = []
    for i in range(0, len(noisy), batch):
        out = model(noisy[i:i + batch].to(device)).cpu()
        values.extend(psnr(out, clean[i:i + batch], data_range=1.0).tolist())
    model.train(training)
    return float(np.mean(values))


def plot_curves(log_path, png_path):
    """Training loss, validation loss (and PSNR, where measured) against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    loss = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
    val_loss = [(int(r["step"]), float(r["val_loss"])) for r in rows if r.get("val_loss")]
    val = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if loss:
        ax.plot(*zip(*loss), lw=0.8, color="#2a7ab9",
                label="training loss (against the targets, kept pixels)")
    if val_loss:
        ax.plot(*zip(*val_loss), "s-", ms=3, color="#2ca02c",
                label="validation loss (held out, clean-free)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    if val:
        other = ax.twinx()
        other.plot(*zip(*val), "o-", color="#d62728", label="validation PSNR (dB)")
        other.set_ylabel("PSNR (dB)")
        other.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
