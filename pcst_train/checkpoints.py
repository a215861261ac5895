"""Self-describing checkpoints, and loading of the reference implementation's files.

Every load uses ``torch.load(weights_only=True)``: nothing in a checkpoint file can run code.
The reference UNet file holds an ``argparse.Namespace``; that one class is allowed, nothing else.

Our format: a dict with ``format = "pcst-checkpoint"``, ``version``, ``model`` (name),
``model_config`` (constructor arguments), ``state_dict``, and for training runs ``optimizer``,
``scheduler``, ``epoch``, ``step``, ``rng`` (torch and numpy states), ``train_config`` and
``store`` (the store's parameters and filter), so that a file alone can rebuild and resume a run,
and ``validation_set`` (the fingerprint and size of the held-out set it was judged on, where the
store has one: runs whose losses compare share it).
Pre-training runs carry ``pretrain`` (their configuration and image folder) instead of the last
two. ``final.pt`` files hold no optimizer, scheduler or random states.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
from pathlib import Path

import torch

from pcst_prep.errors import InputError

from .models import build_model

FORMAT = "pcst-checkpoint"
VERSION = 1
# The shipped blind-Gaussian UNet (see pipelines/pretrain/unet.toml); ``--init pretrained``.
PRETRAINED = Path(__file__).parent / "weights" / "bf_unet_gaussian.pt"


def _safe_load(path: Path):
    if path.is_dir():
        inside = next((path / n for n in ("best.pt", "final.pt") if (path / n).is_file()), None)
        hint = (f"; give {inside}" if inside is not None else
                " (a store?); give a run's best.pt or final.pt, 'pretrained' or one of the "
                "authors' files")
        raise InputError(f"is a folder, not a checkpoint file{hint}", path)
    if not path.is_file():
        raise InputError("no such checkpoint file", path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message would advise an unsafe load: never shown
        raise InputError("refused: the file holds Python objects that could run code when "
                         "loaded; pcst loads checkpoints of tensors and plain data only",
                         path) from None
    except Exception:
        raise InputError("not a PyTorch checkpoint file (cannot be read as one)", path) from None


def read_checkpoint(path) -> dict:
    """Any supported checkpoint as our format's dict (at least model, model_config, state_dict).

    Recognises our own files, the reference's bias-free DnCNN (a plain state dict of
    ``conv_layers``/``running_sd``/``gammas``) and its bias-free UNet (a dict whose ``model``
    entry is a list holding one state dict).
    """
    path = PRETRAINED if str(path) == "pretrained" else Path(path)
    data = _safe_load(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if data.get("version") != VERSION:
            raise InputError(f"checkpoint version {data.get('version')} is not supported", path)
        return data
    if isinstance(data, dict) and isinstance(data.get("model"), list) and data["model"] \
            and "conv1.weight" in data["model"][0]:
        state = data["model"][0]
        return {"model": "unet", "model_config": {"channels": state["conv1.weight"].shape[1]},
                "state_dict": state, "source": "reference-unet"}
    if isinstance(data, dict) and "conv_layers.0.weight" in data:
        layers = len([k for k in data if k.startswith("conv_layers.")])
        first = data["conv_layers.0.weight"]
        return {"model": "dncnn",
                "model_config": {"channels": first.shape[1], "layers": layers,
                                 "kernels": first.shape[0]},
                "state_dict": dict(data), "source": "reference-dncnn"}
    raise InputError("not a pcst checkpoint nor a reference DnCNN/UNet file", path)


def load_weights(model: torch.nn.Module, state_dict: dict, path) -> None:
    """Load weights, naming the keys that differ when the architecture does not match."""
    expected, given = model.state_dict(), state_dict
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if expected[k].shape != given[k].shape)
    if missing or unexpected or wrong:
        def few(keys):
            return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
        parts = []
        if missing:
            parts.append(f"missing {few(missing)}")
        if unexpected:
            parts.append(f"unexpected {few(unexpected)}")
        if wrong:
            parts.append(f"other shapes for {few(wrong)}")
        raise InputError(f"checkpoint does not fit {type(model).__name__}: {'; '.join(parts)}",
                         path)
    model.load_state_dict(given)


def load_model(path, expect: str | None = None) -> tuple[torch.nn.Module, dict]:
    """(model with weights, checkpoint dict) from any supported file.

    ``expect``: the model name the caller wants; another architecture is refused, naming the
    keys that differ.
    """
    data = read_checkpoint(path)
    name = data["model"]
    if expect is not None and expect != name:
        model = build_model(expect, channels=data["model_config"].get("channels", 3))
        load_weights(model, data["state_dict"], path)  # raises, naming the keys
    model = build_model(name, **data["model_config"])
    load_weights(model, data["state_dict"], path)
    return model, data


def save_checkpoint(path, model: torch.nn.Module, model_name: str, **extra) -> Path:
    """Write atomically (temporary file, then rename): a kill never leaves half a checkpoint."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "model": model_name,
               "model_config": model.config(), "state_dict": model.state_dict(), **extra}
    buffer = io.BytesIO()  # torch.save to a file reports a full disk without its errno
    torch.save(payload, buffer)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
