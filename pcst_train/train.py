"""Adapting a pre-trained denoiser to a store: MSE against the noisy patch-craft targets.

Defaults follow the paper: Adam, lr 1e-3 halved at epochs 5, 10, 15, 20, 25 of 30. When
``steps`` bounds the run instead, the halvings fall at the same fractions of it
(``milestones / epochs``: 1/6 .. 5/6 by default). The loop is :func:`pcst_train.loop.fit`
(log.csv, last.pt after every epoch, final.pt, curves.png, validation PSNR per epoch when the
store has clean tiles); a run adds ``crops.png`` with clean tiles (noisy / before / after /
clean).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch

from pcst_prep import store as zstore
from pcst_prep.errors import InputError

from .checkpoints import load_model
from .config import TrainConfig
from .data import StoreDataset, clean_pairs, make_loader, open_training_store
from .loop import fit, resolve_device, resumed, seed_everything
from .metrics import psnr
from .models import build_model


class StoreBatches:
    """A store's (input, target) samples in batches, reshuffled every epoch (see
    :class:`StoreDataset`)."""

    def __init__(self, dataset: StoreDataset, batch_size: int, workers: int = 0):
        self.dataset, self.batch_size = dataset, batch_size
        self.loader = make_loader(dataset, batch_size, workers)
        self.steps_per_epoch = math.ceil(len(dataset) / batch_size)

    def epoch(self, epoch: int):
        self.dataset.set_epoch(epoch)
        return iter(self.loader)


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
    group = open_training_store(store)
    channels = zstore.channels(group)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model, state = resumed(out_dir, resume)
    if model is None and config.init:
        model, _ = load_model(config.init, expect=config.model)
    elif model is None:
        model = build_model(config.model, channels=channels)
    if model.channels != channels:
        raise InputError(f"model has {model.channels} channels, store has {channels}")
    model.to(device)

    dataset = StoreDataset(store, seed=config.seed, clean_targets=config.clean_targets)
    batches = StoreBatches(dataset, config.batch_size, config.workers)
    total_steps, milestones = milestones_in_steps(config, batches.steps_per_epoch)
    validation = clean_pairs(store, config.validate) if config.validate else None
    shown = validation[0][:4] if validation else None
    shown_before = _outputs(model, shown, device) if validation else None
    about = {"train_config": asdict(config),
             "store": {"path": str(store),
                       "parameters": zstore.description(group).get("parameters"),
                       "filter": zstore.description(group).get("filter")}}
    result = fit(model, batches, out_dir, total_steps=total_steps, lr=config.lr,
                 milestones=milestones, gamma=config.gamma, device=device, resume_from=state,
                 validation=validation, about=about, progress=progress, desc="train")
    if validation:
        plot_crops(Path(out_dir) / "crops.png", shown,
                   {"before": shown_before, "after": _outputs(model, shown, device)},
                   validation[1][:4])
    return {**result, "validation_tiles": len(validation[0]) if validation else 0}


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
