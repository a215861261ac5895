"""Crafting patch-craft tiles from a burst and its nnf: NumPy only.

The build (stage 3 of a format-1 store, validation tiles) and the trainer (which crafts the
tiles of a format-2 store while it streams) share these functions, so that a tile crafted
either way is the same to the bit. This module imports neither Numba nor Dask.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


def extend_frames(burst: np.ndarray, patch_size: int) -> np.ndarray:
    """Mirror-extend every frame by ``patch_size - 1`` pixels on each side.

    Parameters
    ----------
    burst : float32 [M, H, W, C]
    patch_size : int

    Returns
    -------
    float32 [M, H + 2P, W + 2P, C] with P = patch_size - 1, NumPy 'reflect' padding (the
    edge pixel is not repeated).
    """
    pad = patch_size - 1
    return np.pad(burst, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")



def _patch_origin(pixels: np.ndarray, offset: int, patch_size: int) -> np.ndarray:
    """Top-left coordinate (in the extended frame) of the patch holding each pixel."""
    return pixels + (patch_size - 1) - (pixels - offset) % patch_size


def craft_region(extended: np.ndarray, nnf: np.ndarray, patch_size: int,
                 offset: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """The part ``[rows, cols]`` of a patch-craft target, from an already extended burst.

    Parameters
    ----------
    extended : float32 [M, H + 2P, W + 2P, C]
        From :func:`pcst_prep.matching.extend_frames`.
    nnf : int16 [H + P, W + P, 3]
    patch_size : int
    offset : (k, l)
    rows, cols : slice
        Region of the original frame (steps of 1).

    Returns
    -------
    float32 [len(rows), len(cols), C]
    """
    pad = patch_size - 1
    height = extended.shape[1] - 2 * pad
    width = extended.shape[2] - 2 * pad
    k, l = offset
    if not (0 <= k < patch_size and 0 <= l < patch_size):
        raise InputError(f"offset must satisfy 0 <= k, l < {patch_size}, got {offset}")
    if nnf.shape != (height + pad, width + pad, 3):
        raise InputError(f"nnf has shape {nnf.shape}, expected {(height + pad, width + pad, 3)}")
    (top, bottom, step), (left, right, col_step) = rows.indices(height), cols.indices(width)
    if step != 1 or col_step != 1:
        raise InputError(f"rows and cols must be slices of step 1, got {rows} and {cols}")
    row_blocks = _blocks(top, bottom, k, patch_size)
    col_blocks = _blocks(left, right, l, patch_size)
    if len(row_blocks) * len(col_blocks) > BLOCK_COPIES:
        return _gather(extended, nnf, patch_size, offset, np.arange(top, bottom),
                       np.arange(left, right))
    # a tile: one slice copy per patch it overlaps (the same values as the gather, faster)
    out = np.empty((max(0, bottom - top), max(0, right - left), extended.shape[3]),
                   extended.dtype)
    starts_y = np.array([a for a, _ in row_blocks])
    starts_x = np.array([c for c, _ in col_blocks])
    matches = nnf[_patch_origin(starts_y, k, patch_size)[:, None],
                  _patch_origin(starts_x, l, patch_size)[None, :]].tolist()
    for (a, b), row in zip(row_blocks, matches):
        for (c, d), (t, dy, dx) in zip(col_blocks, row):
            out[a - top:b - top, c - left:d - left] = extended[t, a + pad + dy:b + pad + dy,
                                                               c + pad + dx:d + pad + dx]
    return out


BLOCK_COPIES = 256  # regions that overlap more patches than this are gathered pixel by pixel


def _blocks(start: int, stop: int, offset: int, patch_size: int) -> list[tuple[int, int]]:
    """[start, stop) cut at the patch boundaries (coordinates = offset mod patch_size)."""
    first = start + (offset - start) % patch_size
    edges = sorted({start, stop, *range(first, stop, patch_size)})
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if a < b]


def _gather(extended, nnf, patch_size, offset, ys, xs) -> np.ndarray:
    """craft_region pixel by pixel: each pixel's patch, that patch's match, the pixel in it."""
    pad = patch_size - 1
    k, l = offset
    match = nnf[_patch_origin(ys, k, patch_size)[:, None],
                _patch_origin(xs, l, patch_size)[None, :]].astype(np.intp)  # [h, w, 3]
    src_rows = ys[:, None] + pad + match[..., 1]
    src_cols = xs[None, :] + pad + match[..., 2]
    return extended[match[..., 0], src_rows, src_cols]


def ring_region(frames: np.ndarray, match: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The part ``[rows, cols]`` of a ring target (:func:`pcst_prep.matching.ring_match`):
    float32 [len(rows), len(cols), C], pixel (u, v) of the frame copied from
    ``frames[t, u + dy, v + dx]`` with (t, dy, dx) = ``match[u, v]`` (frame coordinates)."""
    t, dy, dx = (match[rows, cols, i].astype(np.intp) for i in range(3))
    u, v = np.indices(t.shape)
    return np.asarray(frames[t, u + rows.start + dy, v + cols.start + dx], dtype=np.float32)
