"""Vectorised PyTorch exhaustive block matching: the baseline our Numba kernel is timed against.

The same search as :func:`pcst_prep.match_patches`, written the way the reference
implementation writes it: for every displacement one whole-frame shifted difference, a box sum
by two cumulative sums, and a running minimum. Lives in benchmarks/ because pcst_prep never
imports torch.
"""

import numpy as np
import torch


def torch_match_patches(burst: np.ndarray, center: int, patch_size: int, search_radius: int):
    """Returns (nnf int16 [H+P, W+P, 3], distance float32 [H+P, W+P]) like match_patches."""
    p, r = patch_size, search_radius
    pad = p - 1
    frames = torch.from_numpy(np.ascontiguousarray(burst.transpose(0, 3, 1, 2)))
    ext = torch.nn.functional.pad(frames, (pad, pad, pad, pad), mode="reflect")  # [M, C, He, We]
    _, _, height, width = ext.shape
    n_rows, n_cols = height - pad, width - pad
    query = ext[center]
    best = torch.full((n_rows, n_cols), float("inf"))
    best_t = torch.zeros((n_rows, n_cols), dtype=torch.int16)
    best_dy = torch.zeros_like(best_t)
    best_dx = torch.zeros_like(best_t)
    with torch.no_grad():
        for t in range(ext.shape[0]):
            if t == center:
                continue
            for dy in range(-r, r + 1):
                u0, u1 = max(0, -dy), min(n_rows, n_rows - dy)
                for dx in range(-r, r + 1):
                    v0, v1 = max(0, -dx), min(n_cols, n_cols - dx)
                    if u0 >= u1 or v0 >= v1:
                        continue
                    q = query[:, u0:u1 + pad, v0:v1 + pad]
                    c = ext[t, :, u0 + dy:u1 + dy + pad, v0 + dx:v1 + dx + pad]
                    d = ((c - q) ** 2).sum(dim=0)
                    d = torch.cumsum(d, dim=1)
                    d = torch.cat([d[:, p - 1:p], d[:, p:] - d[:, :-p]], dim=1)
                    d = torch.cumsum(d, dim=0)
                    d = torch.cat([d[p - 1:p], d[p:] - d[:-p]], dim=0)
                    region = (slice(u0, u1), slice(v0, v1))
                    better = d < best[region]
                    best[region] = torch.where(better, d, best[region])
                    best_t[region] = torch.where(better, t, best_t[region])
                    best_dy[region] = torch.where(better, dy, best_dy[region])
                    best_dx[region] = torch.where(better, dx, best_dx[region])
    nnf = torch.stack([best_t, best_dy, best_dx], dim=-1).numpy().astype(np.int16)
    return nnf, best.numpy()
