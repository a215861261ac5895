"""Blind i.i.d. Gaussian pre-training on clean images: the starting point the method adapts.

Each step draws random crops of the clean images, a noise level per crop uniformly in
[0, sigma_max] (0-255 scale), and trains with MSE against the clean crop. Writes ``final.pt``
(our checkpoint format), ``log.csv`` and ``curves.png`` into the run directory.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pcst_prep.bursts import find_sequences, probe_sequence, read_frames
from pcst_prep.errors import InputError

from .checkpoints import save_checkpoint
from .loop import plot_curves, resolve_device
from .models import build_model


def load_images(image_dir, max_images: int | None = None) -> list[np.ndarray]:
    """Every frame of every sequence (image folders, videos) below ``image_dir``."""
    images = []
    for sequence in find_sequences(image_dir):
        info = probe_sequence(sequence)
        images.extend(read_frames(sequence, range(info.n_frames)))
        if max_images and len(images) >= max_images:
            return images[:max_images]
    return images


def pretrain(image_dir, out_dir, model: str = "dncnn", sigma_max: float = 55.0,
             steps: int = 2000, batch_size: int = 16, crop: int = 50, lr: float = 1e-3,
             seed: int = 0, device: str = "auto", model_config: dict | None = None,
             progress: bool = True) -> Path:
    """Train ``model`` from scratch for blind Gaussian denoising; returns the checkpoint path."""
    from tqdm.auto import tqdm

    images = load_images(image_dir)
    images = [im for im in images if min(im.shape[:2]) >= crop]
    if not images:
        raise InputError(f"holds no image of at least {crop}x{crop}", image_dir)
    channels = images[0].shape[2]
    if any(im.shape[2] != channels for im in images):
        raise InputError("images have different channel counts", image_dir)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = resolve_device(device)
    net = build_model(model, channels=channels, **(model_config or {})).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, [int(steps * f) for f in (0.5, 0.75, 0.9)], gamma=0.5)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "log.csv"
    start = time.perf_counter()
    with open(log_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "step", "loss", "lr", "samples",
                                               "val_psnr", "seconds"])
        writer.writeheader()
        for step in tqdm(range(1, steps + 1), desc="pretrain", file=sys.stderr,
                         disable=not (progress and sys.stderr.isatty())):
            batch = np.empty((batch_size, crop, crop, channels), np.float32)
            for i in range(batch_size):
                image = images[rng.integers(len(images))]
                y, x = rng.integers(image.shape[0] - crop + 1), rng.integers(image.shape[1] - crop + 1)
                patch = image[y:y + crop, x:x + crop]
                batch[i] = np.rot90(patch, k=int(rng.integers(4)))[:, ::(-1 if rng.random() < 0.5 else 1)]
            clean = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(dev)
            sigma = torch.from_numpy(rng.uniform(0, sigma_max / 255, (batch_size, 1, 1, 1))
                                     .astype(np.float32)).to(dev)
            noisy = clean + sigma * torch.randn_like(clean)
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(net(noisy), clean)
            loss.backward()
            optimizer.step()
            scheduler.step()
            writer.writerow({"epoch": 0, "step": step, "loss": f"{loss.item():.6g}",
                             "lr": f"{scheduler.get_last_lr()[0]:.6g}",
                             "samples": step * batch_size, "val_psnr": "",
                             "seconds": f"{time.perf_counter() - start:.2f}"})
            if step % 100 == 0:
                f.flush()
    path = save_checkpoint(out_dir / "final.pt", net, model, step=steps,
                           pretrain={"image_dir": str(image_dir), "sigma_max": sigma_max,
                                     "steps": steps, "batch_size": batch_size, "crop": crop,
                                     "lr": lr, "seed": seed})
    plot_curves(log_path, out_dir / "curves.png")
    return path
