"""Adapting a pre-trained denoiser to a store: the mean absolute error (or, with ``loss``
"mse", the squared error) against the noisy patch-craft targets, less the target pixels that
the pixel filter finds wrong (:mod:`pcst_train.losses`).

Defaults follow the paper: Adam, lr 1e-3 halved at epochs 5, 10, 15, 20, 25 of 30. When
``steps`` bounds the run instead, the halvings fall at the same fractions of it
(``milestones / epochs``: 1/6 .. 5/6 by default). The loop is :func:`pcst_train.loop.fit`
(log.csv, last.pt after every epoch, best.pt, final.pt, curves.png).

The model is judged on the store's held-out validation tiles (:class:`HeldOut`), never trained
on: the validation loss is the mean absolute error (``--validation-loss``) against their
validation targets over the pixels that the pixel filter finds right
(``--validation-filter``), clean-free; where the
noise was synthesised the PSNR against their clean tiles is reported too (measured, never
used to choose), and ``crops.png`` shows noisy / before / after / clean tiles.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pcst_prep import store as zstore
from pcst_prep.errors import InputError

from .checkpoints import load_model, read_checkpoint
from .config import VALIDATION_FILTER, VALIDATION_LOSS, TrainConfig
from .data import StoreDataset, batches_of, make_loader, open_training_store
from .loop import fit, resolve_device, resumed, seed_everything
from .losses import pixel_errors, pixel_filter_mask
from .metrics import psnr
from .models import build_model, fit_channels


class HeldOut:
    """A store's held-out validation tiles: the clean-free loss, and the PSNR where clean
    tiles exist.

    The loss is the mean over tiles and their K targets of the mean absolute error (``loss``
    "mae", the default) or the MSE ("mse") between model(y) and target - bias, the
    bias being the validation targets' own mean offset from their inputs (a property of the
    held-out data alone, so that runs on stores built with other settings compare), over the
    pixels that the pixel filter at factor ``pixel_filter`` keeps
    (:func:`pcst_train.losses.pixel_filter_mask` of input and target: where a target's
    content is evidently wrong, its error would rank models by how they fit that error; the
    same pixels for every model; 0: every pixel).
    With the MSE, its expectation is the model's error against the clean tile, plus the
    targets' noise
    variance (the same for every model), plus two cross terms: between the model's error and
    the targets' content error, and between the model's error and the targets' noise (which
    patch-craft matching makes resemble the input's). Ring targets remove the second: the
    pixel a target copies is matched by the ring around it, never by itself, so its noise is
    close to independent of the input's. The targets are the same for every
    run (fixed settings, drawn from the held-out burst alone), so runs compare;
    benchmarks/validation_terms.py measures both terms and how well the loss ranks models.
    Where the noise's mean given the image is not zero (a camera's tone curve and clip at
    black), the MSE ranks models by their distance to clean + that mean; the absolute error
    ranks them by their distance to the targets' median, which is the clean value where the
    noise is symmetric before the curve (docs/results.md, "The absolute error in the loss").

    ``fingerprint`` identifies the tiles and targets (a digest of their values): runs whose
    losses compare share it, and ``pcst-train compare`` and ``trial`` check it.
    """

    def __init__(self, store, batch: int = 16, pixel_filter: float = VALIDATION_FILTER,
                 loss: str = VALIDATION_LOSS):
        inputs, targets, clean = zstore.read_validation(open_training_store(store))
        self.fingerprint = validation_fingerprint(inputs, targets, pixel_filter, loss)
        self.loss = loss
        bias = np.float32(np.mean(targets, dtype=np.float64) - np.mean(inputs, dtype=np.float64))
        to = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))  # noqa: E731
        self.inputs, self.targets = to(inputs), to(targets - bias)
        self.clean = None if clean is None else to(clean)
        self.batch = batch
        k = self.targets.shape[1]
        self.mask = None  # [n, K, 1, S, S] float, 1 where a target pixel counts
        if pixel_filter:  # by batches, so that large held-out sets need little memory
            self.mask = torch.cat([
                pixel_filter_mask(self.inputs[i:i + batch].repeat_interleave(k, 0),
                                  self.targets[i:i + batch].flatten(0, 1), pixel_filter)
                .reshape(-1, k, 1, *self.targets.shape[3:]).float()
                for i in range(0, len(self.inputs), batch)])
        self.kept = 1.0 if self.mask is None else float(self.mask.mean())

    def __len__(self):
        return len(self.inputs)

    @torch.no_grad()
    def evaluate(self, model, device) -> dict:
        training = model.training
        model.eval()
        summed, counted, values = 0.0, 0.0, []
        for i in range(0, len(self.inputs), self.batch):
            out = model(self.inputs[i:i + self.batch].to(device)).cpu()
            error = pixel_errors(out[:, None], self.targets[i:i + self.batch], self.loss)
            if self.mask is None:
                summed += float(error.sum())
                counted += error.numel()
            else:
                mask = self.mask[i:i + self.batch]
                summed += float((error * mask).sum())
                counted += float(mask.sum()) * error.shape[2]
            if self.clean is not None:
                values.extend(psnr(out, self.clean[i:i + self.batch], data_range=1.0).tolist())
        model.train(training)
        return {"val_loss": summed / max(counted, 1.0),
                "val_psnr": float(np.mean(values)) if values else None}


def validation_fingerprint(inputs: np.ndarray, targets: np.ndarray,
                           pixel_filter: float = 0.0, loss: str = "mse") -> str:
    """A short digest of validation tiles and their targets (shapes and values), of the
    validation's pixel filter (none: the digest of the tiles alone, as before the filter) and
    of its loss (the MSE adds nothing, as before the absolute error)."""
    digest = hashlib.sha256()
    for array in (inputs, targets):
        array = np.ascontiguousarray(array, dtype=np.float32)
        digest.update(repr(array.shape).encode())
        digest.update(memoryview(array).cast("B"))
    if pixel_filter:
        digest.update(f"pixel filter {float(pixel_filter)!r}".encode())
    if loss != "mse":
        digest.update(f"loss {loss}".encode())
    return digest.hexdigest()[:16]


class StoreBatches:
    """A store's (input, target) samples in batches, reshuffled every epoch (see
    :class:`StoreDataset`)."""

    def __init__(self, dataset: StoreDataset, batch_size: int, workers: int = 0):
        self.dataset, self.batch_size = dataset, batch_size
        self.loader = make_loader(dataset, batch_size, workers)
        self.steps_per_epoch = math.ceil(len(dataset) / batch_size)

    def epoch(self, epoch: int):
        self.dataset.set_epoch(epoch)
        return batches_of(self.loader)


def milestones_in_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, list[int]]:
    """(total steps, lr milestones in steps).

    Milestones are epochs of an ``epochs``-long run; with ``steps`` they keep their fraction
    of the run.
    """
    if config.steps is None:
        return config.epochs * steps_per_epoch, [m * steps_per_epoch for m in config.milestones]
    scale = config.steps / config.epochs
    return config.steps, [max(1, round(m * scale)) for m in config.milestones]


def _refuse_finished_run(state: dict | None, total_steps: int, patience: int | None, out_dir):
    """A resumed run that has nothing left to do (its steps done, or stopped by ``patience``
    validations without a new best) and whose final.pt it wrote then is refused: training on
    would replace that final.pt. (One interrupted before writing its final.pt resumes, and
    writes it.)"""
    if state is None:
        return
    step, since_best = state["step"], (state.get("tracking") or {}).get("since_best", 0)
    final = Path(out_dir) / "final.pt"
    if not final.exists() or read_checkpoint(final).get("step", -1) < step:
        return
    if step >= total_steps:
        why, more = f"all its {total_steps} steps are done", "more --epochs or --steps"
    elif patience is not None and since_best >= patience:
        why = (f"it stopped early at step {step}: {since_best} validations in a row without a "
               "new best")
        more = "a larger --patience"
    else:
        return
    raise InputError(f"the run has finished ({why}); its models are best.pt and final.pt. To "
                     f"train on, resume with {more}", out_dir)


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
    config = config.as_trained()
    channels = zstore.channels(group)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model, state = resumed(out_dir, resume)
    from_rgb = False  # an RGB start on a grayscale store: its grayscale copy (as_grayscale)
    if model is None and config.init != "scratch":
        model, _ = load_model(config.init, expect=config.model)
        from_rgb = model.channels == 3 and channels == 1
        model = fit_channels(model, channels) or model
    elif model is None:
        model = build_model(config.model, channels=channels)
    if model.channels != channels:
        raise InputError(f"model has {model.channels} channels, store has {channels}")
    model.to(device)

    dataset = StoreDataset(store, seed=config.seed, clean_targets=config.clean_targets)
    batches = StoreBatches(dataset, config.batch_size, config.workers)
    total_steps, milestones = milestones_in_steps(config, batches.steps_per_epoch)
    _refuse_finished_run(state, total_steps, config.patience, out_dir)
    validation = (HeldOut(store, pixel_filter=config.validation_filter,
                          loss=config.validation_loss)
                  if zstore.validated_bursts(group) else None)
    judged = ((state or {}).get("validation_set") or {}).get("fingerprint")
    if validation is not None and judged is not None and judged != validation.fingerprint:
        raise InputError("the run being resumed was judged on another validation set or "
                         "--validation-filter or --validation-loss: its validation losses would "
                         "not compare; resume "
                         "with the settings it started with, or start a new --out", out_dir)
    shown = validation.inputs[:4] if validation is not None and validation.clean is not None \
        else None
    shown_before = _outputs(model, shown, device) if shown is not None else None
    about = {"train_config": asdict(config),
             "store": {"path": str(zstore.location(store)),
                       "parameters": zstore.description(group).get("parameters"),
                       "filter": zstore.description(group).get("filter")}}
    if from_rgb:  # the checkpoint's init names an RGB model; say what became of it
        about["init_converted"] = "as_grayscale"
    elif state is not None and "init_converted" in state:  # a resumed run keeps saying so
        about["init_converted"] = state["init_converted"]
    if validation is not None:
        about["validation_set"] = {"fingerprint": validation.fingerprint,
                                   "tiles": len(validation),
                                   "pixel_filter": config.validation_filter,
                                   "loss": config.validation_loss,
                                   "pixels_kept": round(validation.kept, 4)}
    result = fit(model, batches, out_dir, total_steps=total_steps, lr=config.lr,
                 milestones=milestones, gamma=config.gamma, device=device, resume_from=state,
                 validation=validation, validate_every=config.validate_every,
                 patience=config.patience, log_every=config.log_every, about=about,
                 progress=progress, desc="train", keep_validated=config.keep_validated,
                 precision=config.precision,
                 pixel_filter=config.pixel_filter, loss=config.loss)
    if shown is not None:
        plot_crops(Path(out_dir) / "crops.png", shown,
                   {"before": shown_before, "after": _outputs(model, shown, device)},
                   validation.clean[:4])
    return {**result, "validation_tiles": len(validation) if validation is not None else 0,
            "validation_kept": validation.kept if validation is not None else None,
            "init_from_rgb": from_rgb}


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
