"""A trained model for use outside Python: TorchScript, ONNX and a JSON model card.

``export_model`` writes, into one folder, ``model.ts`` (TorchScript, for C++ and Java via
libtorch), ``model.onnx`` (ONNX opset :data:`ONNX_OPSET`, for ONNX Runtime and the runtimes
that read ONNX) and ``model.json``, the model card: what goes in and comes out, where the
weights come from (training store and settings, or pre-training) and the validation figures
the checkpoint recorded. Both exports take any batch size, height and width, and are checked
against PyTorch on an input of another size than the one they were traced with.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from pcst_prep import __version__
from pcst_prep.errors import InputError

from .checkpoints import PRETRAINED, load_model
from .config import ONNX_OPSET
from .models import model_name

CARD_FORMAT = "pcst-model-card"
INPUT_NAME, OUTPUT_NAME = "noisy", "denoised"
# Exports are traced on one size and checked on another (odd, to cover the UNet's padding).
TRACE_SIZE, CHECK_SIZE = (64, 64), (67, 93)
TOLERANCE = 1e-5


def export_model(checkpoint, out_dir) -> dict:
    """Write ``model.ts``, ``model.onnx`` and ``model.json`` for ``checkpoint`` into
    ``out_dir``; returns the model card (the contents of ``model.json``).

    The exported models take float32 ``[N, C, H, W]`` in [0, 1] (8-bit data divided by 255,
    16-bit by 65535) and return the denoised image in the same layout, not clipped.

    Raises
    ------
    InputError
        For a file that is not a checkpoint, or an export that differs from PyTorch by more
        than 1e-5 on the check input.
    """
    path = PRETRAINED if str(checkpoint) == "pretrained" else Path(checkpoint)
    model, data = load_model(path)
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    channels = int(data["model_config"].get("channels", 3))
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, channels, *TRACE_SIZE, generator=generator)
    check = torch.rand(2, channels, *CHECK_SIZE, generator=generator)

    torchscript = _export_torchscript(model, example, out_dir / "model.ts")
    onnx = _export_onnx(model, example, out_dir / "model.onnx")
    differences = _check(model, check, torchscript, onnx)
    for name, difference in differences.items():
        if difference is not None and difference > TOLERANCE:
            raise InputError(f"the {name} export differs from PyTorch by {difference:.3g} "
                             f"(more than {TOLERANCE})", path)
    card = model_card(model, data, path, check, differences)
    (out_dir / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _export_torchscript(model, example: torch.Tensor, path: Path):
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is what libtorch
        # (C++, Java) loads today.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(model, example).save(str(path))
        return torch.jit.load(str(path))


def _export_onnx(model, example: torch.Tensor, path: Path) -> Path:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ModuleNotFoundError:
        raise InputError("exporting to ONNX needs onnxscript; install the trainer's "
                         "dependencies with: pip install 'pcst[train]'") from None
    axes = {0: "batch", 2: "height", 3: "width"}
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it lists operators of packages we do not use
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=True,
                              opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_shapes=(axes,),
                              external_data=False, verbose=False)
    finally:
        quiet.setLevel(level)
    return path


@torch.no_grad()
def _check(model, check: torch.Tensor, torchscript, onnx: Path) -> dict:
    """Largest absolute difference of each export from PyTorch on ``check`` (None for ONNX
    where onnxruntime is not installed)."""
    expected = model(check).numpy()
    differences = {"torchscript": float(np.abs(torchscript(check).numpy() - expected).max()),
                   "onnx": None}
    try:
        import onnxruntime
    except ModuleNotFoundError:
        return differences
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    result = session.run(None, {INPUT_NAME: check.numpy()})[0]
    differences["onnx"] = float(np.abs(result - expected).max())
    return differences


def model_card(model, data: dict, path: Path, check: torch.Tensor, differences: dict) -> dict:
    """The model card: architecture, inputs and outputs, provenance and validation figures."""
    config = data["model_config"]
    return {
        "format": CARD_FORMAT, "version": 1, "pcst_version": __version__,
        "checkpoint": str(path),
        "architecture": {"name": model_name(model), "class": type(model).__name__,
                         "config": config, "bias_free": True,
                         "parameters": sum(p.numel() for p in model.parameters())},
        "channels": int(config.get("channels", 3)),
        "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32",
                  "value_range": [0.0, 1.0],
                  "scaling": "8-bit samples / 255, 16-bit samples / 65535"},
        "output": {"name": OUTPUT_NAME, "layout": "NCHW", "dtype": "float32",
                   "value_range": [0.0, 1.0], "clipped": False},
        "dynamic_axes": ["batch", "height", "width"],
        "files": {"torchscript": "model.ts", "onnx": "model.onnx", "onnx_opset": ONNX_OPSET,
                  "exporter": f"torch {torch.__version__} (torch.jit.trace; torch.onnx, "
                              "dynamo)"},
        "check": {"input_shape": list(check.shape), "max_abs_diff": differences,
                  "tolerance": TOLERANCE},
        "training": _provenance(data),
        "validation": _validation(data, path),
    }


def _provenance(data: dict) -> dict:
    if data.get("source"):  # the reference implementation's files
        return {"source": data["source"], "note": "weights of the reference implementation"}
    if "pretrain" in data:
        return {"kind": "blind Gaussian pre-training", "settings": data["pretrain"],
                "step": data.get("step"), "epoch": data.get("epoch")}
    store = data.get("store") or {}
    return {"kind": "patch-craft adaptation", "store": store.get("path"),
            "store_parameters": store.get("parameters"), "store_filter": store.get("filter"),
            "settings": data.get("train_config"), "step": data.get("step"),
            "epoch": data.get("epoch")}


def _validation(data: dict, path: Path) -> dict | None:
    """The checkpoint's held-out figures (val_loss; val_psnr where clean frames were known),
    and those before training from the run's log.csv when it lies beside the checkpoint."""
    figures = data.get("validation")
    if not figures:
        return None
    judged_by = (data.get("train_config") or {}).get("validation_loss") or "mse"  # older: mse
    error = {"mae": "mean absolute", "mse": "mean squared"}.get(judged_by, judged_by)
    result = {"after": figures, "before": None,
              "meaning": f"val_loss: the {error} error against held-out validation targets "
                         "(clean-free; over the pixels that train_config's validation_filter "
                         "keeps); val_psnr: dB against the held-out clean tiles, where known"}
    log = path.parent / "log.csv"
    if log.is_file():
        with open(log) as f:
            first = next((r for r in csv.DictReader(f) if r.get("val_loss")), None)
        if first is not None and first.get("step") == "0":
            result["before"] = {"val_loss": float(first["val_loss"]),
                                "val_psnr": float(first["val_psnr"]) if first["val_psnr"]
                                else None}
    return result
