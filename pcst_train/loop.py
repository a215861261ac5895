"""The training loop that adapting to a store (:mod:`.train`) and blind Gaussian pre-training
(:mod:`.pretrain`) share: Adam on the MSE between the model's output and a target, the
learning rate multiplied by ``gamma`` at milestones.

The two differ only in where their (input, target) batches come from: a :class:`Batches`.
Every run writes ``log.csv`` (one row per step: loss, lr, samples seen; the validation PSNR
per epoch when given validation tiles), ``last.pt`` after every epoch (self-describing and
enough to resume exactly: weights, optimizer, scheduler, epoch, step, random states, and the
caller's description of the run), ``final.pt`` at the end and ``curves.png``.
"""

from __future__ import annotations

import csv
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from pcst_prep.errors import InputError

from .checkpoints import load_model, save_checkpoint
from .metrics import psnr
from .models import model_name

LOG_FIELDS = ["epoch", "step", "loss", "lr", "samples", "val_psnr", "seconds"]


class Batches(Protocol):
    """A source of training batches: (input, target) float32 tensors [B, C, H, W]."""

    batch_size: int

    def epoch(self, epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``; the same ones whenever it is asked for, so that a
        resumed run sees what an uninterrupted one would."""


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


def fit(model: nn.Module, batches: Batches, out_dir, *, total_steps: int, lr: float,
        milestones: list[int], gamma: float, device: torch.device,
        resume_from: dict | None = None, validation=None, about: dict | None = None,
        progress: bool = True, desc: str = "train") -> dict:
    """Train ``model`` (already on ``device``) for ``total_steps`` steps of ``batches``.

    Parameters
    ----------
    out_dir : run directory (created)
    milestones : steps after which the learning rate is multiplied by ``gamma``
    resume_from : the checkpoint dict (from :func:`resumed`) whose weights ``model`` holds
    validation : (noisy, clean) tiles [n, C, S, S] to report the PSNR on, or None
    about : entries that every checkpoint carries to describe the run (configuration, data)

    Returns
    -------
    dict: final (path of final.pt), log (path of log.csv), steps, epochs, seconds,
    psnr_before and psnr_after (None without validation tiles).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    about = about or {}
    name = model_name(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=gamma)
    epoch, step = 0, 0
    if resume_from is not None:
        optimizer.load_state_dict(resume_from["optimizer"])
        scheduler.load_state_dict(resume_from["scheduler"])
        epoch, step = resume_from["epoch"], resume_from["step"]
        _set_rng_state(resume_from["rng"])
    psnr_before = evaluate_tiles(model, validation, device) if validation else None
    log_path = out_dir / "log.csv"
    keep_rows = []
    if log_path.exists() and resume_from is not None:  # keep the rows up to the resumed step
        with open(log_path) as f:
            keep_rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    log = open(log_path, "w", newline="")
    writer = csv.DictWriter(log, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(keep_rows)
    if psnr_before is not None and step == 0:
        writer.writerow({"epoch": 0, "step": 0, "loss": "", "lr": "", "samples": 0,
                         "val_psnr": f"{psnr_before:.4f}", "seconds": "0"})
    criterion = nn.MSELoss()
    start = time.perf_counter()
    bar = tqdm(total=total_steps, initial=step, desc=desc, unit="step", file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()))
    try:
        while step < total_steps:
            model.train()
            for inputs, targets in batches.epoch(epoch):
                if step >= total_steps:
                    break
                inputs, targets = inputs.to(device), targets.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(inputs), targets)
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
                                 "samples": step * batches.batch_size, "val_psnr": "",
                                 "seconds": f"{time.perf_counter() - start:.2f}"})
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4g}")
            epoch += 1
            value = evaluate_tiles(model, validation, device) if validation else None
            if value is not None:
                writer.writerow({"epoch": epoch, "step": step, "loss": "", "lr": "",
                                 "samples": step * batches.batch_size,
                                 "val_psnr": f"{value:.4f}",
                                 "seconds": f"{time.perf_counter() - start:.2f}"})
            log.flush()
            save_checkpoint(out_dir / "last.pt", model, name, optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), epoch=epoch, step=step,
                            rng=_rng_state(), **about)
    finally:
        bar.close()
        log.close()
    final = save_checkpoint(out_dir / "final.pt", model, name, epoch=epoch, step=step, **about)
    plot_curves(log_path, out_dir / "curves.png")
    psnr_after = evaluate_tiles(model, validation, device) if validation else None
    return {"final": final, "log": log_path, "steps": step, "epochs": epoch,
            "seconds": time.perf_counter() - start, "psnr_before": psnr_before,
            "psnr_after": psnr_after}


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
    """Training loss (and validation PSNR) against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    loss = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
    val = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r["val_psnr"]]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if loss:
        ax.plot(*zip(*loss), lw=0.8, color="#2a7ab9", label="training loss (MSE vs target)")
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
