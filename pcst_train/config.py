"""The parameters of a training run, declared once.

Each field carries its default, its help text and its command-line option
(:func:`pcst_prep.clitools.param`); ``pcst-train train`` generates its options from these
declarations. This module does not import torch, so that the command line can describe itself
and explain what is missing where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcst_prep.clitools import param
from pcst_prep.errors import InputError

# The names of pcst_train.models.MODELS (which imports torch).
MODEL_NAMES = ("unet", "dncnn")


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of a training run (``pcst-train STORE --out RUN_DIR``)."""

    model: str = param("unet", choices=MODEL_NAMES,
                       help="Architecture: the bias-free UNet or DnCNN.")
    init: str | None = param(None, help="Start from this checkpoint: ours, the reference "
                             "DnCNN/UNet files, or 'pretrained' (the shipped blind-Gaussian "
                             "UNet).")
    epochs: int = param(30, help="Passes over the store.")
    steps: int | None = param(None, help="Stop after this many steps (lr halvings scale along).")
    lr: float = param(1e-3, help="Adam learning rate.")
    milestones: tuple = param((5, 10, 15, 20, 25), cli=False,
                              help="Epochs after which the learning rate is multiplied by gamma.")
    gamma: float = param(0.5, cli=False, help="Learning-rate factor at each milestone.")
    batch_size: int = param(16, help="Samples per step.")
    device: str = param("auto", help="auto, cpu or cuda.")
    workers: int = param(0, help="DataLoader workers.")
    seed: int = param(0, help="Seed of the initial weights and of every random draw.")
    clean_targets: bool = param(False, help="Train on the store's clean tiles (the supervised "
                                "N2C baseline).")
    validate: int = param(64, cli=False, help="Clean tiles of the store to report the PSNR on "
                          "after every epoch (0: none).")

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise InputError(f"unknown model {self.model!r} (known: {', '.join(MODEL_NAMES)})")
        if self.epochs < 1 or (self.steps is not None and self.steps < 1):
            raise InputError("epochs and steps must be >= 1")
        if self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise InputError(f"learning rate must be > 0, got {self.lr}")
