"""The parameters of a training run and of a pre-training, each declared once.

Each field carries its default, its help text and its command-line option
(:func:`pcst_prep.clitools.param`); ``pcst-train train`` and ``pcst-train pretrain`` generate
their options from these declarations, and a .toml file of fields can fill one
(:func:`read_preset`). This module does not import torch, so that the command line can
describe itself and explain what is missing where torch is not installed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pcst_prep.clitools import param
from pcst_prep.errors import InputError

# The names of pcst_train.models.MODELS (which imports torch).
MODEL_NAMES = ("unet", "dncnn")
# The ONNX opset `pcst-train export` writes (pcst_train.export, which imports torch).
ONNX_OPSET = 20

# The validation loss's pixel filter: pcst-train's default and HeldOut's.
VALIDATION_FILTER = 2.0
# The per-pixel errors a training or validation loss can average (pcst_train.losses):
# absolute, squared.
LOSSES = ("mae", "mse")
# The validation loss's: HeldOut's default (pcst-train's follows --loss).
VALIDATION_LOSS = "mae"
# What a run's recorded settings lack when it predates an option: the behaviour of before.
BEFORE_OPTIONS = {"pixel_filter": 0.0, "validation_filter": 0.0, "loss": "mse",
                  "validation_loss": "mse"}


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of a training run (``pcst-train STORE --out RUN_DIR``)."""

    model: str = param("unet", choices=MODEL_NAMES,
                       help="Architecture: the bias-free UNet or DnCNN.")
    init: str = param("pretrained", help="Start from this checkpoint: 'pretrained' (the "
                      "shipped blind-Gaussian UNet), ours, the reference DnCNN/UNet files, or "
                      "'scratch' (random weights). An RGB checkpoint starts a grayscale store "
                      "as its grayscale copy (the RGB model on the grey frame, outputs "
                      "averaged).")
    epochs: int = param(30, help="Passes over the store.")
    steps: int | None = param(None, help="Stop after this many steps (lr halvings scale along).")
    lr: float = param(1e-3, help="Adam learning rate.")
    milestones: tuple = param((5, 10, 15, 20, 25), cli=False,
                              help="Epochs after which the learning rate is multiplied by gamma.")
    gamma: float = param(0.5, cli=False, help="Learning-rate factor at each milestone.")
    batch_size: int = param(16, help="Samples per step.")
    device: str = param("auto", help="auto, cpu or cuda.")
    workers: int = param(0, help="Processes that read and decode the store's tiles ahead of "
                         "training (PyTorch DataLoader workers; 0: the training process reads "
                         "them itself). Training runs in this process on --device either way. "
                         "(pcst-prep build --workers is another thing: processes that build "
                         "bursts.)")
    seed: int = param(0, help="Seed of the initial weights and of every random draw.")
    clean_targets: bool = param(False, help="Train on the store's clean tiles (the supervised "
                                "N2C baseline).")
    pixel_filter: float = param(2.0, help="Leave out of the loss the target pixels whose "
                                "residual (target - input) has a local energy (7 x 7 mean) "
                                "above this many times their tile's median: seams and motion "
                                "that a crafted target got wrong (0: off; off with "
                                "--clean-targets).")
    loss: str = param("mae", choices=LOSSES, help="The error the training minimises: mae, the "
                      "mean absolute error (the network learns the targets' median, which is "
                      "the clean value where the noise is symmetric before a tone curve and "
                      "the clip at black, as in processed camera footage), or mse, the mean "
                      "squared error (their mean: right for linear raw data whose noise has "
                      "zero mean, such as photon counts). mse with --clean-targets.")
    validation_loss: str | None = param(None, choices=LOSSES, help="The error the validation "
                                        "loss averages over the held-out targets (runs with "
                                        "the same value compare) [the --loss].")
    validation_filter: float = param(VALIDATION_FILTER, help="Leave out of the validation "
                                     "loss the held-out target pixels that the pixel filter "
                                     "at this factor finds wrong (the same pixels for every "
                                     "model, so runs with the same value compare; 0: every "
                                     "pixel).")
    validate_every: int = param(100, help="Steps between evaluations on the store's held-out "
                                "validation tiles (best.pt keeps the best).")
    log_every: int = param(10, help="Steps between writes of log.csv to disk (every step is "
                           "logged; a line of progress is printed every 10 s off a terminal).")
    patience: int | None = param(None, help="Stop when this many validations in a row did not "
                                 "improve the validation loss [never].")
    precision: str = param("auto", choices=("auto", "float32", "bfloat16"),
                           help="Arithmetic of the forward pass: bfloat16 runs it under "
                           "autocast (weights, loss and optimizer stay float32), about 3x "
                           "faster on CPUs with AVX512-BF16 or AMX at equal PSNR "
                           "(docs/results.md); auto: bfloat16 on such a CPU, float32 "
                           "elsewhere (a GPU gains nothing at the default batch: "
                           "benchmarks/README.md).")
    keep_validated: bool = param(False, help="Also keep the weights of every validation, as "
                                 "RUN_DIR/validated/step_NNNNNN.pt (to compare or choose later).")

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise InputError(f"unknown model {self.model!r} (known: {', '.join(MODEL_NAMES)})")
        if self.epochs < 1 or (self.steps is not None and self.steps < 1):
            raise InputError("epochs and steps must be >= 1")
        if self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise InputError(f"learning rate must be a number > 0, got {self.lr}")
        if self.init == "pretrained" and self.model != "unet":
            raise InputError(f"the shipped pre-trained model is a unet; for a {self.model} give "
                             "--init with its checkpoint, or --init scratch")
        if self.pixel_filter != 0 and not (math.isfinite(self.pixel_filter)
                                           and self.pixel_filter >= 1):
            raise InputError(f"pixel filter must be 0 (off) or a number >= 1 (a factor of the "
                             f"tile's median), got {self.pixel_filter}")
        if self.validation_filter != 0 and not (math.isfinite(self.validation_filter)
                                                and self.validation_filter >= 1):
            raise InputError(f"validation filter must be 0 (off) or a number >= 1 (a factor of "
                             f"the tile's median), got {self.validation_filter}")
        if self.validation_loss is None:  # follows the training's
            object.__setattr__(self, "validation_loss", self.loss)
        for name in ("loss", "validation_loss"):
            if getattr(self, name) not in LOSSES:
                raise InputError(f"unknown {name.replace('_', ' ')} {getattr(self, name)!r} "
                                 f"(known: {', '.join(LOSSES)})")
        if self.validate_every < 1 or self.log_every < 1 or (self.patience is not None
                                                             and self.patience < 1):
            raise InputError("validate_every, log_every and patience must be >= 1")

    def as_trained(self) -> "TrainConfig":
        """The settings a training runs with and records: clean targets have no wrong pixels
        and no noise, so they train with the plain squared error whatever was asked."""
        if self.clean_targets:
            return dataclasses.replace(self, pixel_filter=0.0, loss="mse")
        return self


@dataclass(frozen=True)
class PretrainConfig:
    """Parameters of a blind Gaussian pre-training (``pcst-train pretrain IMAGES --out RUN_DIR``).

    The images are sampled, not enumerated, so an epoch is ``epoch_steps`` steps: the run
    writes ``last.pt`` after each, and its batches depend only on the seed and the epoch.
    """

    model: str = param("unet", choices=MODEL_NAMES,
                       help="Architecture: the bias-free UNet or DnCNN.")
    layers: int | None = param(None, help="DnCNN depth [20].")
    sigma_max: float = param(55.0, help="Noise levels drawn uniformly in [0, sigma-max] "
                             "(0-255 scale).")
    steps: int = param(2000, help="Optimisation steps.")
    epoch_steps: int = param(500, help="Steps per epoch: last.pt is written after each, and "
                             "--resume continues from there.")
    batch_size: int = param(16, help="Crops per step.")
    crop: int = param(50, help="Side of the random square crops.")
    lr: float = param(1e-3, help="Adam learning rate.")
    milestones: tuple = param((0.5, 0.75, 0.9), cli=False,
                              help="Fractions of the steps after which the learning rate is "
                              "multiplied by gamma.")
    gamma: float = param(0.5, cli=False, help="Learning-rate factor at each milestone.")
    device: str = param("auto", help="auto, cpu or cuda.")
    seed: int = param(0, help="Seed of the initial weights and of every random draw.")

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise InputError(f"unknown model {self.model!r} (known: {', '.join(MODEL_NAMES)})")
        if self.layers is not None and (self.model != "dncnn" or self.layers < 2):
            raise InputError(f"layers sets the depth of a dncnn (>= 2), got {self.layers} "
                             f"for a {self.model}")
        if self.steps < 1 or self.epoch_steps < 1 or self.batch_size < 1 or self.crop < 1:
            raise InputError("steps, epoch steps, batch size and crop must be >= 1")
        if self.sigma_max < 0:
            raise InputError(f"sigma max must be >= 0, got {self.sigma_max}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise InputError(f"learning rate must be a number > 0, got {self.lr}")

    def model_config(self) -> dict:
        """Constructor arguments of the model beyond its channels."""
        return {} if self.layers is None else {"layers": self.layers}


def read_preset(config_class, path, **overrides):
    """A ``config_class`` from a .toml file of its fields, ``overrides`` taking precedence.

    The keys ``name``, ``version`` and ``description`` describe the file and are skipped, as
    in the pipelines of pcst-prep; any other unknown key is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such configuration file", path)
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"bad configuration file ({exc})", path) from None
    for key in ("name", "version", "description"):
        values.pop(key, None)
    unknown = set(values) - {f.name for f in dataclasses.fields(config_class)}
    if unknown:
        raise InputError(f"unknown parameters {sorted(unknown)} (not fields of "
                         f"{config_class.__name__})", path)
    if isinstance(values.get("milestones"), list):
        values["milestones"] = tuple(values["milestones"])
    return config_class(**{**values, **overrides})
