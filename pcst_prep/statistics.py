"""Tile statistics of patch-craft targets and the filter that keeps the good ones.

For a training tile, r = target - y. Under the method's assumptions (the target is the clean
frame plus noise independent of y's noise) the sample covariance s_yr = cov(y, r) over a tile
is Gaussian around a small negative value; a bad match (one that copies y's own noise, or a
different structure) pushes s_yr into a long negative tail. :func:`choose_s_min` cuts that tail.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import InputError


def tile_origins(length: int, tile_size: int, tile_stride: int) -> np.ndarray:
    """Start coordinates i * stride of the tiles that fit fully in ``length`` pixels."""
    if tile_size < 1 or tile_stride < 1:
        raise InputError(f"tile_size and tile_stride must be >= 1, got {tile_size}, {tile_stride}")
    return np.arange(0, length - tile_size + 1, tile_stride)


def _box_sums(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``image[..., H, W]`` over size x size tiles at the given origins (float64)."""
    sat = np.zeros(image.shape[:-2] + (image.shape[-2] + 1, image.shape[-1] + 1))
    sat[..., 1:, 1:] = image.cumsum(axis=-2, dtype=np.float64).cumsum(axis=-1)
    r0, c0 = rows[:, None], cols[None, :]
    return (sat[..., r0 + size, c0 + size] - sat[..., r0, c0 + size]
            - sat[..., r0 + size, c0] + sat[..., r0, c0])


def tile_stats(y, target, tile_size: int, tile_stride: int):
    """s_yr and mean(r) of every tile, r = target - y.

    Parameters
    ----------
    y : float32 [H, W, C]
        The noisy input (center) frame.
    target : float32 [H, W, C] or [K, H, W, C]
        One target, or K targets (for instance several offsets) of the same frame.
    tile_size, tile_stride : int
        Tiles have top-left (i * stride, j * stride) and lie fully inside the frame.

    Returns
    -------
    s_yr : float64 [n_i, n_j] (or [K, n_i, n_j])
        mean(y * r) - mean(y) * mean(r) over the tile's pixels and channels.
    r_mean : float64, same shape
        mean(r) over the tile.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.random((60, 80, 3))
    >>> s_yr, r_mean = tile_stats(y, y + 0.5, tile_size=50, tile_stride=30)
    >>> s_yr.shape, float(np.round(r_mean[0, 0], 6)), bool(abs(s_yr[0, 0]) < 1e-12)
    ((1, 2), 0.5, True)
    """
    y = np.asarray(y, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if y.ndim != 3 or target.shape[-3:] != y.shape:
        raise InputError(f"y {y.shape} and target {target.shape} must be [H, W, C] alike")
    rows = tile_origins(y.shape[0], tile_size, tile_stride)
    cols = tile_origins(y.shape[1], tile_size, tile_stride)
    n = tile_size * tile_size * y.shape[2]
    r = target - y
    sum_y = _box_sums(y.sum(axis=-1), rows, cols, tile_size)
    sum_r = _box_sums(r.sum(axis=-1), rows, cols, tile_size)
    sum_yr = _box_sums((r * y).sum(axis=-1), rows, cols, tile_size)
    r_mean = sum_r / n
    return sum_yr / n - (sum_y / n) * r_mean, r_mean


def offset_tile_stats(extended, center: int, nnf, patch_size: int, offsets, tile_size: int,
                      tile_stride: int):
    """:func:`tile_stats` of many patch-craft targets at once, without building the targets.

    Equal to ``tile_stats(y, craft_target(burst, nnf, p, offset), tile_size, tile_stride)`` for
    every offset, with y the center frame; the target pixels are gathered inside the loop so
    that the p^2 full-frame targets are never held in memory. Parallel over offsets.

    Parameters
    ----------
    extended : float32 [M, H + 2P, W + 2P, C]
        The burst extended by :func:`pcst_prep.matching.extend_frames`.
    center : int
    nnf : int16 [H + P, W + P, 3]
    patch_size : int
    offsets : int [K, 2]
        (k, l) of each target, 0 <= k, l < p.
    tile_size, tile_stride : int

    Returns
    -------
    s_yr, r_mean : float64 [K, n_i, n_j]
    """
    pad = patch_size - 1
    height = extended.shape[1] - 2 * pad
    width = extended.shape[2] - 2 * pad
    offsets = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1, 2)
    if offsets.size and (offsets.min() < 0 or offsets.max() >= patch_size):
        raise InputError(f"offsets must lie in [0, {patch_size}), got {offsets.min()}..{offsets.max()}")
    rows = tile_origins(height, tile_size, tile_stride).astype(np.int64)
    cols = tile_origins(width, tile_size, tile_stride).astype(np.int64)
    merged = np.ascontiguousarray(extended, dtype=np.float32).reshape(
        extended.shape[0], extended.shape[1], -1)
    from . import _score_kernel  # here, not at the top: TileFilter users need no Numba

    return _score_kernel.offset_tile_stats(merged, center, np.ascontiguousarray(nnf), patch_size,
                                      offsets, rows, cols, tile_size)


def choose_s_min(s_yr_values, bins: int = 50001) -> float:
    """The centering threshold on s_yr: keep tiles with s_yr > s_min.

    The values are histogrammed (``bins`` equal bins, as a density). Starting at the peak
    bin, walk left, accumulating the left side's first moment about the peak,
    sum |density * (s - peak)|, and stop at the first bin where it exceeds the right side's
    whole first moment. That bin's center is s_min.

    Why this centers the kept distribution: the mean of the kept values, measured from the
    peak, is (right moment - left moment) / mass. Cutting where the two moments balance makes
    that zero, so the kept histogram has its mean at its peak, as a Gaussian does. The long
    negative tail of bad matches is what the cut removes; without such a tail the cut falls
    near the far end of the left flank and little is lost.

    Parameters
    ----------
    s_yr_values : array_like of float
        s_yr of every scored (tile, offset) pair.
    bins : int
        Histogram bins (the reference implementation uses 50001).

    Returns
    -------
    float
        s_min; ``-inf`` when the left side never outweighs the right (nothing to cut).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> good = rng.normal(0.0, 1.0, 100_000)
    >>> bad = -np.abs(rng.normal(0.0, 10.0, 20_000))   # the negative tail
    >>> values = np.concatenate([good, bad])
    >>> s_min = choose_s_min(values, bins=2001)
    >>> kept = values[values > s_min]
    >>> bool(-5 < s_min < -1.5), bool(abs(kept.mean()) < 0.1)
    (True, True)
    """
    values = np.asarray(s_yr_values, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError("no s_yr values to choose s_min from")
    if not np.isfinite(values).all():
        raise InputError("s_yr values contain NaN or infinite values")
    if values.min() == values.max():
        return -np.inf
    counts, edges = np.histogram(values, bins=bins)
    return choose_s_min_from_histogram(counts, edges)


def choose_s_min_from_histogram(counts, edges) -> float:
    """:func:`choose_s_min` from a histogram already computed (for instance out of core).

    ``counts`` may be raw counts or a density: with equal bins the rule compares moments, so
    the scale cancels.
    """
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    centers = (edges[1:] + edges[:-1]) / 2
    peak = int(counts.argmax())
    moment = np.abs(counts * (centers - centers[peak]))
    right = moment[peak + 1:].sum()
    left_from_peak = np.cumsum(moment[:peak][::-1])[::-1]  # left_from_peak[i] = sum(i..peak-1)
    exceeded = np.nonzero(left_from_peak > right)[0]
    if exceeded.size == 0:
        return -np.inf
    return float(centers[exceeded[-1]])


def _compute(*values):
    """Evaluate Dask values (out-of-core reductions) in one pass; NumPy values pass through."""
    if any(hasattr(v, "dask") for v in values):
        import dask

        return dask.compute(*values)
    return values


def _as_array(values):
    return values if hasattr(values, "dask") else np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class MeanWindow:
    """The second filter: keep r_mean in (low, high); ``center`` is subtracted from targets."""

    low: float
    high: float
    center: float


def mean_window(r_mean_values, mean_std: float, kept=None) -> MeanWindow:
    """Window of r_mean around its mean, ``mean_std`` standard deviations wide on each side.

    Applied to the tiles that passed the s_yr filter (``kept``, a boolean mask like
    ``r_mean_values``; default: every finite value). The reference implementation uses 3 for
    synthetic noise and 1 for real noise. ``center`` is the mean of the kept values inside the
    window: the bias of the targets, subtracted from them at training time.

    Works on NumPy and Dask arrays alike (out of core: the moments are summed chunk by chunk).

    Examples
    --------
    >>> window = mean_window([0.0, 0.1, -0.1, 0.02, 5.0], mean_std=1)
    >>> window.low < 0.0 < window.high < 5.0, round(window.center, 3)
    (True, 0.005)
    """
    return _mean_window(_as_array(r_mean_values), mean_std, kept)[0]


def _mean_window(values, mean_std: float, kept) -> tuple[MeanWindow, int]:
    """:func:`mean_window` and the number of kept values inside it."""
    if kept is None:
        kept = np.isfinite(values)
    total, total_sq, n_kept = _compute(np.where(kept, values, 0).sum(),
                                       np.where(kept, values ** 2, 0).sum(), kept.sum())
    if not n_kept:
        raise InputError("no r_mean values to choose a window from")
    mean = total / n_kept
    std = float(np.sqrt(max(total_sq / n_kept - mean ** 2, 0.0)))
    return _window(values, kept, mean - mean_std * std, mean + mean_std * std, mean)


def _window(values, kept, low, high, fallback) -> tuple[MeanWindow, int]:
    """The window (low, high) with its center: the mean of the kept values inside it."""
    with np.errstate(invalid="ignore"):
        inside = kept & (values > low) & (values < high)
    inside_sum, n_inside = _compute(np.where(inside, values, 0).sum(), inside.sum())
    center = float(inside_sum / n_inside) if n_inside else float(fallback)
    return MeanWindow(float(low), float(high), center), int(n_inside)


@dataclass(frozen=True)
class TileFilter:
    """Which scored (tile, offset) pairs train: s_yr > s_min and r_low < r_mean < r_high.

    ``r_center`` is the mean r_mean of the kept pairs, subtracted from targets at training
    time. The rest records how the filter was chosen. Stored as the ``filter`` attribute of a
    store (:meth:`to_attrs`, :meth:`from_attrs`).
    """

    s_min: float
    r_low: float
    r_high: float
    r_center: float
    mean_std: float
    bins: int
    s_yr_range: tuple[float, float]
    scored_pairs: int
    kept_pairs: int

    def keeps(self, s_yr, r_mean):
        """Boolean mask of the pairs that pass (NumPy or Dask arrays; NaN never passes)."""
        with np.errstate(invalid="ignore"):
            return (s_yr > self.s_min) & (r_mean > self.r_low) & (r_mean < self.r_high)

    def to_attrs(self) -> dict:
        values = dataclasses.asdict(self)
        values["s_yr_range"] = list(self.s_yr_range)
        return values

    @classmethod
    def from_attrs(cls, values: dict) -> "TileFilter":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in names}
        return cls(**{**values, "s_yr_range": tuple(values["s_yr_range"])})


def choose_filter(s_yr, r_mean, bins: int, mean_std: float, apply: bool = True) -> TileFilter:
    """The tile filter from every scored pair: s_min by :func:`choose_s_min`, then the r_mean
    window by :func:`mean_window` over the pairs above s_min.

    Parameters
    ----------
    s_yr, r_mean : float arrays of one shape (NumPy, or Dask for out-of-core stores)
        NaN marks pairs that were not scored.
    bins : int
    mean_std : float
    apply : bool
        False: the no-filter ablation; every scored pair passes (finite bounds below and
        above every value, so that the filter stays JSON).
    """
    import dask.array as da

    s_yr, r_mean = (a if hasattr(a, "dask") else da.from_array(np.asarray(a))
                    for a in (s_yr, r_mean))
    s_yr, r_mean = s_yr.ravel(), r_mean.ravel()
    finite = da.isfinite(s_yr)
    lo, hi, n_scored = _compute(da.nanmin(s_yr), da.nanmax(s_yr), finite.sum())
    if not n_scored:
        raise InputError("no (tile, offset) pair could be scored")
    if lo == hi:
        hi = lo + 1e-12
    counts, edges = da.histogram(da.where(finite, s_yr, np.nan), bins=bins,
                                 range=(float(lo), float(hi)))
    if apply:
        s_min = choose_s_min_from_histogram(counts.compute(), edges)
        window, n_kept = _mean_window(r_mean, mean_std, s_yr > s_min)
    else:
        s_min = float(lo) - max(abs(float(lo)), 1.0)
        r_lo, r_hi = _compute(da.nanmin(r_mean), da.nanmax(r_mean))
        window, n_kept = _window(r_mean, finite, float(r_lo) - 1.0, float(r_hi) + 1.0, 0.0)
    return TileFilter(float(s_min), window.low, window.high, window.center, mean_std, bins,
                      (float(lo), float(hi)), int(n_scored), n_kept)
