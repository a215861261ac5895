"""PSNR and SSIM of a model's output against clean references: image folders or a store's
clean tiles. Results come back as rows (one per image, then the mean) and are written as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from pcst_prep.bursts import IMAGE_SUFFIXES, natural_key, read_image
from pcst_prep.errors import InputError

from .data import clean_pairs, held_out_clean_pairs
from .denoise import denoise_array, for_channels
from .metrics import psnr, ssim


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError("not a directory", folder)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise InputError("holds no image", folder)
    return {p.stem: p for p in files}


def scores(estimate: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of one float [H, W, C] image against its clean one (data range 1)."""
    a = torch.from_numpy(np.ascontiguousarray(estimate.transpose(2, 0, 1)))
    b = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))
    return float(psnr(a, b, 1.0)), float(ssim(a, b, 1.0))


def evaluate_folders(model, clean_dir, noisy_dir, device="cpu", tile=256) -> list[dict]:
    """Per-image PSNR/SSIM (data range 1 on [0, 1] values) of noisy and denoised vs clean.

    Images are paired by file name (without suffix)."""
    clean, noisy = _images(Path(clean_dir)), _images(Path(noisy_dir))
    common = [name for name in noisy if name in clean]
    if not common:
        raise InputError(f"no file names in common with {clean_dir}", noisy_dir)
    rows, fitted = [], {}  # the model per channel count: an RGB model's grey copy made once
    for name in common:
        reference, observed = read_image(clean[name]), read_image(noisy[name])
        if reference.shape != observed.shape:
            raise InputError(f"shape {observed.shape} differs from the clean {reference.shape}",
                             noisy[name])
        channels = observed.shape[2]
        if channels not in fitted:
            fitted[channels] = for_channels(model, channels, noisy[name])
        denoised = np.clip(denoise_array(fitted[channels], observed, tile=tile, device=device),
                           0, 1)
        p_noisy, s_noisy = scores(observed, reference)
        p_out, s_out = scores(denoised, reference)
        rows.append({"image": name, "psnr_noisy": p_noisy, "psnr": p_out,
                     "ssim_noisy": s_noisy, "ssim": s_out})
    return _with_mean(rows)


@torch.no_grad()
def evaluate_store(model, store, limit: int | None = None, device="cpu") -> list[dict]:
    """PSNR/SSIM on a store's clean tiles (stores built with synthetic noise): its held-out
    validation tiles when it has them, else (older stores) its training tiles."""
    pairs = held_out_clean_pairs(store, limit) or clean_pairs(store, limit=limit or 10 ** 9)
    if pairs is None:
        raise InputError("store has no clean tiles (its noise was not synthetic)", store)
    noisy, clean = pairs
    model = for_channels(model, noisy.shape[1], store)
    model.eval()
    rows = []
    for i in range(0, len(noisy), 32):
        out = model(noisy[i:i + 32].to(device)).cpu().clamp(0, 1)
        for j in range(out.shape[0]):
            rows.append({"image": f"tile{i + j}",
                         "psnr_noisy": float(psnr(noisy[i + j], clean[i + j], 1.0)),
                         "psnr": float(psnr(out[j], clean[i + j], 1.0)),
                         "ssim_noisy": float(ssim(noisy[i + j], clean[i + j], 1.0)),
                         "ssim": float(ssim(out[j], clean[i + j], 1.0))})
    return _with_mean(rows)


def _with_mean(rows: list[dict]) -> list[dict]:
    mean = {"image": "mean"}
    for key in ("psnr_noisy", "psnr", "ssim_noisy", "ssim"):
        mean[key] = float(np.mean([r[key] for r in rows]))
    return rows + [mean]


def write_csv(rows: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def format_table(rows: list[dict], max_rows: int = 20) -> str:
    lines = [f"{'image':<20} {'PSNR noisy':>10} {'PSNR':>8} {'SSIM noisy':>10} {'SSIM':>7}"]
    shown = rows[:-1] if len(rows) - 1 <= max_rows else rows[:max_rows // 2] + rows[-1 - max_rows // 2:-1]
    for r in shown + [rows[-1]]:
        lines.append(f"{r['image']:<20} {r['psnr_noisy']:>10.2f} {r['psnr']:>8.2f} "
                     f"{r['ssim_noisy']:>10.4f} {r['ssim']:>7.4f}")
    if len(rows) - 1 > max_rows:
        lines.insert(1 + max_rows // 2, f"... ({len(rows) - 1 - max_rows} more)")
    return "\n".join(lines)
