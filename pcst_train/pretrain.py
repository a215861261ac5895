"""Blind i.i.d. Gaussian pre-training on clean images: the starting point the method adapts.

The loop is the one that adapts to a store (:func:`pcst_train.loop.fit`); only the batches
differ: random crops of the clean images, flipped and rotated, each with Gaussian noise of a
level drawn uniformly in [0, sigma_max] (0-255 scale), against the clean crop. The run writes
the same checkpoints as a training run (``last.pt`` after every epoch of ``epoch_steps``
steps, enough to resume exactly; ``final.pt``), ``log.csv`` and ``curves.png``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pcst_prep.bursts import find_sequences, probe_sequence, read_frames
from pcst_prep.errors import InputError

from .config import PretrainConfig
from .loop import fit, resolve_device, resumed, seed_everything
from .models import build_model


def load_images(image_dir) -> list[np.ndarray]:
    """Every frame of every sequence (image folders, videos) below ``image_dir``, as float32
    [H, W, C] arrays in [0, 1]."""
    images = []
    for sequence in find_sequences(image_dir):
        info = probe_sequence(sequence)
        images.extend(read_frames(sequence, range(info.n_frames)))
    return images


class GaussianBatches:
    """(noisy, clean) crops [batch_size, C, crop, crop] float32 for blind Gaussian denoising.

    Each crop comes from a random image at a random place, with one of the 8 flips/rotations,
    and gets i.i.d. Gaussian noise of a standard deviation drawn uniformly in
    [0, sigma_max / 255]. The noise is drawn on ``device``. An epoch's batches depend only on
    the seed and the epoch.
    """

    def __init__(self, images: list[np.ndarray], crop: int, batch_size: int, sigma_max: float,
                 steps_per_epoch: int, seed: int, device: torch.device):
        self.images, self.crop, self.batch_size = images, crop, batch_size
        self.sigma_max, self.steps_per_epoch, self.seed = sigma_max, steps_per_epoch, seed
        self.device = torch.device(device)

    def epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        generator = torch.Generator(self.device)
        generator.manual_seed(int(rng.integers(2**62)))
        for _ in range(self.steps_per_epoch):
            clean = torch.from_numpy(self._crops(rng)).to(self.device)
            sigma = torch.from_numpy(rng.uniform(0, self.sigma_max / 255, (len(clean), 1, 1, 1))
                                     .astype(np.float32)).to(self.device)
            noise = torch.randn(clean.shape, generator=generator, device=self.device)
            yield clean + sigma * noise, clean

    def _crops(self, rng) -> np.ndarray:
        crop = self.crop
        batch = np.empty((self.batch_size, crop, crop, self.images[0].shape[2]), np.float32)
        for i in range(self.batch_size):
            image = self.images[rng.integers(len(self.images))]
            y = rng.integers(image.shape[0] - crop + 1)
            x = rng.integers(image.shape[1] - crop + 1)
            patch = np.rot90(image[y:y + crop, x:x + crop], k=int(rng.integers(4)))
            batch[i] = patch[:, ::-1] if rng.random() < 0.5 else patch
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def pretrain(image_dir, out_dir, config: PretrainConfig = PretrainConfig(),
             resume: str | None = None, progress: bool = True) -> dict:
    """Train a model from scratch for blind Gaussian denoising on the images in ``image_dir``.

    ``resume``: None, "auto" (continue ``out_dir/last.pt`` if present) or a checkpoint path.
    Returns :func:`pcst_train.loop.fit`'s summary ({"final": path, "steps": n, ...}).
    """
    images = [im for im in load_images(image_dir) if min(im.shape[:2]) >= config.crop]
    if not images:
        raise InputError(f"holds no image of at least {config.crop}x{config.crop}", image_dir)
    channels = images[0].shape[2]
    if any(im.shape[2] != channels for im in images):
        raise InputError("images have different channel counts", image_dir)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model, state = resumed(out_dir, resume)
    if model is None:
        model = build_model(config.model, channels=channels, **config.model_config())
    if model.channels != channels:
        raise InputError(f"model has {model.channels} channels, the images {channels}")
    batches = GaussianBatches(images, config.crop, config.batch_size, config.sigma_max,
                              config.epoch_steps, config.seed, device)
    milestones = [int(config.steps * fraction) for fraction in config.milestones]
    about = {"pretrain": {**asdict(config), "image_dir": str(Path(image_dir))}}
    return fit(model.to(device), batches, out_dir, total_steps=config.steps, lr=config.lr,
               milestones=milestones, gamma=config.gamma, device=device, resume_from=state,
               about=about, progress=progress, desc="pretrain")
