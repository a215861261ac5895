"""Exact dense block matching of a burst's centre frame against its other frames.

The hot loop lives in :mod:`pcst_prep._kernels`; this module checks and lays out the input.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _kernels
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


def check_burst(burst, patch_size: int, name: str = "burst") -> np.ndarray:
    """Validate a burst for matching and return it as C-contiguous float32 [M, H, W, C]."""
    burst = np.asarray(burst)
    if burst.ndim != 4:
        raise InputError(f"{name} must be a 4-D array [M, H, W, C], got shape {burst.shape}")
    if burst.shape[0] < 2:
        raise InputError(f"{name} needs at least 2 frames, got {burst.shape[0]}")
    if patch_size < 1:
        raise InputError(f"patch_size must be at least 1, got {patch_size}")
    if min(burst.shape[1:3]) < patch_size:
        raise InputError(
            f"{name} frames are {burst.shape[1]}x{burst.shape[2]}, smaller than the patch "
            f"({patch_size}x{patch_size})")
    burst = np.ascontiguousarray(burst, dtype=np.float32)
    if not np.isfinite(burst).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return burst


def match_patches(burst, center: int, patch_size: int, search_radius: int):
    """Dense exact nearest-neighbour field of the centre frame's patches in the other frames.

    Parameters
    ----------
    burst : float32 [M, H, W, C]
        The burst; any real dtype is converted to float32.
    center : int
        Index of the input frame y (0 <= center < M).
    patch_size : int
        p: patches are p x p x C.
    search_radius : int
        R: candidates lie within a (2R + 1)^2 window of displacements.

    Returns
    -------
    nnf : int16 [H + P, W + P, 3]
        For the query patch with top-left (u, v) in the extended centre frame (P = p - 1
        pixels of mirror extension on each side), (t, dy, dx): the matching patch is frame t's
        extended window with top-left (u + dy, v + dx).
    distance : float32 [H + P, W + P]
        Sum of squared differences to that patch over p x p x C values.

    Notes
    -----
    Candidates are all windows of the other M - 1 extended frames displaced by |dy|, |dx| <= R
    that lie fully inside the extended frame. The search is exhaustive: about
    (M - 1)(2R + 1)^2 (H + P)(W + P) candidate pairs, each costing O(C) with running box sums
    (the p^2 factor is amortised away). Distances are accumulated in float32; the chosen
    candidate's distance equals the true minimum up to float32 rounding of the running sums
    (relative error around 1e-6). Ties go to the first candidate in search order (frames by
    distance |t - center|, the earlier first; then dy = 0, -1, 1, -2, 2, ...; then the smallest
    dx), so the result does not depend on Numba's thread count.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.random((12, 16, 1), dtype=np.float32)
    >>> burst = np.stack([frame, frame, np.roll(frame, (1, 2), axis=(0, 1))])
    >>> nnf, distance = match_patches(burst, center=1, patch_size=3, search_radius=2)
    >>> nnf.shape, distance.shape
    ((14, 18, 3), (14, 18))
    >>> int(distance.max())  # frame 0 equals the centre: every patch has an exact match
    0
    """
    burst = check_burst(burst, patch_size)
    n_frames = burst.shape[0]
    if not 0 <= center < n_frames:
        raise InputError(f"center must be in [0, {n_frames - 1}], got {center}")
    if search_radius < 0:
        raise InputError(f"search_radius must be >= 0, got {search_radius}")
    if search_radius > np.iinfo(np.int16).max or n_frames > np.iinfo(np.int16).max:
        raise InputError("search_radius and burst length must fit in int16")
    planar = extend_frames(burst, patch_size).transpose(0, 3, 1, 2)  # [M, C, He, We]
    # nearest frames first: they hold the best matches most often (see _kernels)
    others = sorted((t for t in range(n_frames) if t != center), key=lambda t: (abs(t - center), t))
    guard = search_radius
    padded = np.zeros(planar.shape[:3] + (planar.shape[3] + 2 * guard,), dtype=np.float32)
    padded[..., guard:guard + planar.shape[3]] = planar
    distance, nnf = _kernels.exhaustive_search(
        np.ascontiguousarray(planar[center]), padded[others], np.array(others, dtype=np.int64),
        patch_size, search_radius, numba.get_num_threads())
    return nnf, distance
