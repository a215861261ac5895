"""Adapting a pre-trained denoiser to a store: MSE against the noisy patch-craft targets.

Defaults follow the paper: Adam, lr 1e-3 halved at epochs 5, 10, 15, 20, 25 of 30. When
``steps`` bounds the run instead, the halvings fall at the same fractions of it
(``milestones / epochs``: 1/6 .. 5/6 by default).
Every run writes ``log.csv`` (one row per step: loss, lr, samples seen; validation PSNR per
epoch when the store has clean tiles), ``last.pt`` after every epoch (self-describing, enough to
resume), ``final.pt`` at the end, ``curves.png``, and with clean tiles ``crops.png``
(noisy / before / after / clean).
"""

from __future__ import annotations

import csv
import math
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pcst_prep.errors import InputError

from .checkpoints import load_model, read_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import StoreDataset, clean_pairs, make_loader, open_training_store
from .metrics import psnr
from .models import build_model, model_name


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but this torch sees no CUDA device")
    return torch.device(name)


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


def milestones_in_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, list[int]]:
    """(total steps, lr milestones in steps).

    Milestones are epochs of an ``epochs``-long run; with ``steps`` they keep their fraction
    of the run.
    """
    if config.steps is None:
        return config.epochs * steps_per_epoch, [m * steps_per_epoch for m in config.milestones]
    scale = config.steps / config.epochs
    return config.steps, [max(1, round(m * scale)) for m in config.milestones]


def train(store, out_dir, config: TrainConfig, resume: str | None = None,
          progress: bool = True) -> dict:
    """Train a model on a store; returns {"final": path, "log": path, "steps": n, ...}.

    Parameters
    ----------
    store : path of a finished pcst store
    out_dir : run directory (created)
    config : TrainConfig
    resume : None, "auto" (continue ``out_dir/last.pt`` if present) or a checkpoint path
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    group = open_training_store(store)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)

    checkpoint = None
    if resume == "auto":
        checkpoint = out_dir / "last.pt" if (out_dir / "last.pt").exists() else None
    elif resume:
        checkpoint = Path(resume)
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        if "optimizer" not in state:
            raise InputError("not a training checkpoint (no optimizer state to resume)", checkpoint)
        model, _ = load_model(checkpoint)
    elif config.init:
        model, _ = load_model(config.init, expect=config.model)
        state = None
    else:
        model, state = build_model(config.model, channels=group["samples/input"].shape[-1]), None
    name = model_name(model)
    if model.channels != group["samples/input"].shape[-1]:
        raise InputError(f"model has {model.channels} channels, store has "
                         f"{group['samples/input'].shape[-1]}")
    model.to(device)

    dataset = StoreDataset(store, seed=config.seed, clean_targets=config.clean_targets)
    loader = make_loader(dataset, config.batch_size, config.workers)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total_steps, milestones = milestones_in_steps(config, steps_per_epoch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.gamma)
    epoch, step = 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, step = state["epoch"], state["step"]
        _set_rng_state(state["rng"])
    validation = clean_pairs(store, config.validate) if config.validate else None
    psnr_before = evaluate_tiles(model, validation, device) if validation else None
    shown_before = _outputs(model, validation[0][:4], device) if validation else None
    log_path = out_dir / "log.csv"
    keep_rows = []
    if log_path.exists() and state is not None:  # keep the rows up to the resumed step
        with open(log_path) as f:
            keep_rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    fields = ["epoch", "step", "loss", "lr", "samples", "val_psnr", "seconds"]
    log = open(log_path, "w", newline="")
    writer = csv.DictWriter(log, fieldnames=fields)
    writer.writeheader()
    writer.writerows(keep_rows)
    if psnr_before is not None and step == 0:
        writer.writerow({"epoch": 0, "step": 0, "loss": "", "lr": "", "samples": 0,
                         "val_psnr": f"{psnr_before:.4f}", "seconds": "0"})
    extra = {"train_config": asdict(config),
             "store": {"path": str(store), "parameters": group.attrs.get("parameters"),
                       "filter": group.attrs.get("filter")}}
    criterion = nn.MSELoss()
    start = time.perf_counter()
    bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()))
    try:
        while step < total_steps:
            dataset.set_epoch(epoch)
            model.train()
            for inputs, targets in loader:
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
                                     f"({kept}); check the store or try a lower --lr")
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                writer.writerow({"epoch": epoch, "step": step, "loss": f"{loss.item():.6g}",
                                 "lr": f"{scheduler.get_last_lr()[0]:.6g}",
                                 "samples": step * config.batch_size, "val_psnr": "",
                                 "seconds": f"{time.perf_counter() - start:.2f}"})
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4g}")
            epoch += 1
            value = evaluate_tiles(model, validation, device) if validation else None
            if value is not None:
                writer.writerow({"epoch": epoch, "step": step, "loss": "", "lr": "",
                                 "samples": step * config.batch_size,
                                 "val_psnr": f"{value:.4f}",
                                 "seconds": f"{time.perf_counter() - start:.2f}"})
            log.flush()
            save_checkpoint(out_dir / "last.pt", model, name, optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), epoch=epoch, step=step,
                            rng=_rng_state(), **extra)
    finally:
        bar.close()
        log.close()
    final = save_checkpoint(out_dir / "final.pt", model, name, epoch=epoch, step=step,
                            **extra)
    plot_curves(log_path, out_dir / "curves.png")
    psnr_after = evaluate_tiles(model, validation, device) if validation else None
    if validation:
        plot_crops(out_dir / "crops.png", validation[0][:4],
                   {"before": shown_before, "after": _outputs(model, validation[0][:4], device)},
                   validation[1][:4])
    return {"final": final, "log": log_path, "steps": step, "epochs": epoch,
            "seconds": time.perf_counter() - start, "psnr_before": psnr_before,
            "psnr_after": psnr_after, "validation_tiles": len(validation[0]) if validation else 0}


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


@torch.no_grad()
def _outputs(model, noisy, device) -> torch.Tensor:
    training = model.training
    model.eval()
    out = model(noisy.to(device)).cpu()
    model.train(training)
    return out


def plot_crops(png_path, noisy, outputs: dict, clean):
    """A row per tile: noisy, each output (PSNR in the title), clean; [n, C, S, S] tensors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [("noisy", noisy), *outputs.items(), ("clean", clean)]
    n = len(noisy)
    fig, axes = plt.subplots(n, len(columns), figsize=(2.2 * len(columns), 2.2 * n), dpi=100,
                             squeeze=False)
    for i in range(n):
        for j, (name, images) in enumerate(columns):
            image = images[i].clamp(0, 1).permute(1, 2, 0).numpy()
            ax = axes[i, j]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                      cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            title = name if name == "clean" else \
                f"{name} {float(psnr(images[i], clean[i], 1.0)):.1f} dB"
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


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
