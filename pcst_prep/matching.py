"""Block matching of a burst's center frame against its other frames: exact over a dense
window, the reference's grid, or a coarse-to-fine pyramid's candidates.

The hot loop lives in :mod:`pcst_prep._match_kernel`; this module checks and lays out the input.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _match_kernel, _ring_kernel
from .craft import extend_frames, ring_region  # noqa: F401  (extend_frames re-exported)
from .config import SEARCH_KINDS
from .errors import InputError


def check_burst(burst, patch_size: int) -> np.ndarray:
    """Validate a burst for matching and return it as C-contiguous float32 [M, H, W, C]."""
    burst = np.asarray(burst)
    if burst.ndim != 4:
        raise InputError(f"burst must be a 4-D array [M, H, W, C], got shape {burst.shape}")
    if burst.shape[0] < 2:
        raise InputError(f"burst needs at least 2 frames, got {burst.shape[0]}")
    if patch_size < 1:
        raise InputError(f"patch_size must be at least 1, got {patch_size}")
    if min(burst.shape[1:3]) < patch_size:
        raise InputError(
            f"burst frames are {burst.shape[1]}x{burst.shape[2]}, smaller than the patch "
            f"({patch_size}x{patch_size})")
    burst = np.ascontiguousarray(burst, dtype=np.float32)
    if not np.isfinite(burst).all():
        raise InputError("burst contains NaN or infinite values")
    return burst


def match_patches(burst, center: int, patch_size: int, search_radius: int):
    """Dense exact nearest-neighbour field of the center frame's patches in the other frames.

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
        For the query patch with top-left (u, v) in the extended center frame (P = p - 1
        pixels of mirror extension on each side), (t, dy, dx): the matching patch is frame t's
        extended window with top-left (u + dy, v + dx).
    distance : float32 [H + P, W + P]
        Sum of squared differences to that patch over p x p x C values.

    See Also
    --------
    search_patches : the same over larger candidate sets (the reference's coarse grid, or a
        coarse-to-fine pyramid).

    Notes
    -----
    Candidates are all windows of the other M - 1 extended frames displaced by |dy|, |dx| <= R
    that lie fully inside the extended frame. The search is exhaustive: about
    (M - 1)(2R + 1)^2 (H + P)(W + P) candidate pairs, each costing O(C) with running box sums
    (the p^2 factor is amortised away). Distances are accumulated in float32; the chosen
    candidate's distance equals the true minimum up to float32 rounding of the running sums
    (relative error around 1e-6). Ties go to the first candidate in search order (dy = 0, -1,
    1, -2, 2, ...; then frames by distance |t - center|, the earlier first; then the smallest
    dx), so the result does not depend on Numba's thread count.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.random((12, 16, 1), dtype=np.float32)
    >>> burst = np.stack([frame, frame, np.roll(frame, (1, 2), axis=(0, 1))])
    >>> nnf, distance = match_patches(burst, center=1, patch_size=3, search_radius=2)
    >>> nnf.shape, distance.shape
    ((14, 18, 3), (14, 18))
    >>> int(distance.max())  # frame 0 equals the center: every patch has an exact match
    0
    """
    burst = check_burst(burst, patch_size)
    _check_search(burst, center, search_radius)
    search = _Search(burst, center, patch_size)
    sets = _shared_sets(len(search.others), 2 * search_radius + 1)
    return search.run(_dense_items(search_radius, len(sets)), step=1, sets=sets)


def _check_search(burst, center: int, radius: int):
    n_frames = burst.shape[0]
    if not 0 <= center < n_frames:
        raise InputError(f"center must be in [0, {n_frames - 1}], got {center}")
    if radius < 0:
        raise InputError(f"search_radius must be >= 0, got {radius}")
    if radius > np.iinfo(np.int16).max or n_frames > np.iinfo(np.int16).max:
        raise InputError("search_radius and burst length must fit in int16")


def _search_order(n: int, step: int = 1) -> np.ndarray:
    """Shifts 0, -step, step, -2 step, ... with |shift| <= n * step."""
    order = [0]
    for i in range(1, n + 1):
        order += [-i * step, i * step]
    return np.array(order, dtype=np.int64)


# The other frames share an item (their candidates side by side, see _match_kernel) up to this
# many lanes: past a few hundred lanes longer items gain little (benchmarks/README.md), while
# each thread holds (width + 1) x lanes float32 column sums (4 MB for a 1080p frame at this cap).
MAX_SHARED_LANES = 512


def _shared_sets(n_frames: int, n_dx: int) -> list[list[int]]:
    """The other frames (positions in search order) cut into sets of equal size, as large as
    MAX_SHARED_LANES allows for items of n_dx candidates per frame."""
    size = max(d for d in range(1, n_frames + 1)
               if n_frames % d == 0 and (d == 1 or d * n_dx <= MAX_SHARED_LANES))
    return [list(range(i, i + size)) for i in range(0, n_frames, size)]


def _window_items(shifts, dx_lo: int, n_dx: int, n_sets: int) -> np.ndarray:
    """Items of the shifts dy (in search order), each for every frame set in turn."""
    return np.array([(s, dy, dx_lo, n_dx) for dy in shifts for s in range(n_sets)],
                    dtype=np.int64).reshape(-1, 4)


def _dense_items(radius: int, n_sets: int = 1) -> np.ndarray:
    """Items of every displacement with |dy|, |dx| <= radius for ``n_sets`` frame sets (see
    ``_Search.run``)."""
    return _window_items(_search_order(radius), -radius, 2 * radius + 1, n_sets)


class _Search:
    """One burst laid out for the kernel: the extended center and the other frames in search
    order (nearest first: they hold the best matches most often, see ``_match_kernel``)."""

    def __init__(self, burst: np.ndarray, center: int, patch_size: int, extended=None):
        if extended is None:
            extended = extend_frames(burst, patch_size)
        planar = extended.transpose(0, 3, 1, 2)  # [M, C, He, We]
        self.patch_size = patch_size
        self.center = np.ascontiguousarray(planar[center])
        self.others = sorted((t for t in range(burst.shape[0]) if t != center),
                             key=lambda t: (abs(t - center), t))
        self.planar = planar  # a view: the other frames are copied once, into the planes
        self.frame_ids = np.array(self.others, dtype=np.int64)

    def run(self, items: np.ndarray, step: int, sets: list[list[int]]):
        """(nnf, distance) over the candidates of ``items`` (see ``_match_kernel.search_items``).

        ``sets`` lists the frame sets that items index, as positions in ``others``, all of
        one size: the candidates of a set's frames are computed side by side."""
        n_sets, set_size = len(sets), len(sets[0])
        _, channels, height, width = self.planar.shape
        lanes = -(-(items[:, 3] * set_size) // _match_kernel.LANES) * _match_kernel.LANES
        guard = int(max(np.abs(items[:, 2]).max(),
                        np.abs(items[:, 2] + step * ((lanes - 1) // set_size)).max()))
        n_planes = -(-(width + 2 * guard) // step)
        planes = np.zeros((n_sets, step, channels, height, n_planes * set_size), dtype=np.float32)
        by_column = planes.reshape(n_sets, step, channels, height, n_planes, set_size)
        guarded = np.zeros((channels, height, n_planes * step), dtype=np.float32)  # one frame
        for s, frames in enumerate(sets):
            for i, f in enumerate(frames):
                guarded[..., guard:guard + width] = self.planar[self.others[f]]
                by_column[s, ..., i] = guarded.reshape(channels, height, n_planes,
                                                       step).transpose(3, 0, 1, 2)
        frame_ids = self.frame_ids[np.asarray(sets, dtype=np.int64)]
        bounds = _chunk_bounds(items, set_size, height - self.patch_size + 1, self.patch_size,
                               numba.get_num_threads())
        distance, nnf = _match_kernel.search_items(self.center, planes, frame_ids, items, step,
                                              guard, self.patch_size, bounds)
        return nnf, distance


def _chunk_bounds(items: np.ndarray, set_size: int, n_rows: int, patch_size: int,
                  n_chunks: int) -> np.ndarray:
    """Split consecutive items into chunks of about equal work: lanes (n_dx * set_size, plus 8 for
    each column step's fixed costs) times rows swept (the query rows whose candidate at dy
    lies in the frame, plus the p - 1 rows that start the sweep)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    rows = np.maximum(n_rows - np.abs(items[:, 1]), 0) + patch_size - 1
    work = np.cumsum((items[:, 3] * set_size + 8) * rows)
    cuts = np.searchsorted(work, work[-1] * np.arange(1, n_chunks) / n_chunks)
    return np.unique(np.concatenate([[0], cuts, [len(items)]])).astype(np.int64)


def _merge(first, second):
    """Element-wise nearer of two (nnf, distance) results; ties keep ``first``."""
    better = second[1] < first[1]
    return (np.where(better[..., None], second[0], first[0]),
            np.where(better, second[1], first[1]))


def search_patches(burst, center: int, patch_size: int, search_radius: int, *,
                   search: str = "dense", large_radius: int = 500, grid_step: int = 3,
                   levels: int | None = None, keep: int = 16, refine: int = 2,
                   extended: np.ndarray | None = None):
    """Nearest-neighbour field over a chosen candidate set; the dense window is always in it.

    Parameters
    ----------
    burst, center, patch_size, search_radius
        As for :func:`match_patches`.
    search : {"dense", "grid", "pyramid"}
        - "dense": every displacement with |dy|, |dx| <= search_radius (:func:`match_patches`).
        - "grid": the reference code's real-noise candidates: the dense window plus every
          displacement on a grid of step ``grid_step`` with |dy|, |dx| <= ``large_radius``
          (its ``search_skip``, ``search_offs`` and ``search_offs2``). Exact over that set.
        - "pyramid": coarse to fine up to ``large_radius``, for large motion at a fraction of
          the cost. The burst is halved ``levels`` times (default: until the large radius is
          at most 32 pixels); the coarsest level is searched densely, frame by frame; at each
          finer level the ``keep`` most frequent displacements of the level below, doubled and
          widened by +-``refine`` (then each horizontal run further, to the kernel's vector
          width, which costs nothing), are searched exactly (frame by frame, together with the
          dense window scaled to that level). The last level adds the full dense window.
    large_radius, grid_step, levels, keep, refine
        See ``search``.
    extended : float32 [M, H + 2P, W + 2P, C], optional
        ``extend_frames(burst, patch_size)`` when the caller has it already.

    Returns
    -------
    nnf, distance
        As for :func:`match_patches`.

    Notes
    -----
    Guarantee: every mode is exact over its candidate set, and every set contains the dense
    window, so no position ends up farther from its match than with :func:`match_patches`
    (ties keep the dense window's candidate). "pyramid" may miss the optimum of the large
    window where a motion is rare in the frame; benchmarks/bench_search.py measures how often
    on real video.
    """
    if search not in SEARCH_KINDS:
        raise InputError(f"search must be one of {', '.join(SEARCH_KINDS)}, got {search!r}")
    burst = check_burst(burst, patch_size)
    _check_search(burst, center, max(search_radius, large_radius))
    if grid_step < 1 or keep < 1 or refine < 0:
        raise InputError("grid_step and keep must be >= 1 and refine >= 0")
    state = _Search(burst, center, patch_size, extended)
    n_frames = len(state.others)
    sets = _shared_sets(n_frames, 2 * search_radius + 1)
    result = state.run(_dense_items(search_radius, len(sets)), step=1, sets=sets)
    if search == "dense" or large_radius <= search_radius:
        return result
    if search == "grid":
        n = large_radius // grid_step
        sets = _shared_sets(n_frames, 2 * n + 1)
        items = _window_items(_search_order(n, grid_step), -n * grid_step, 2 * n + 1, len(sets))
        return _merge(result, state.run(items, step=grid_step, sets=sets))
    frames = range(n_frames)
    items = _pyramid_items(burst, center, patch_size, search_radius, large_radius, levels, keep,
                           refine, frames)
    if not len(items):
        return result
    return _merge(result, state.run(items, step=1, sets=[[f] for f in frames]))


def _downsample(burst: np.ndarray) -> np.ndarray:
    """2x2 box average (an odd last row or column is dropped)."""
    m, h, w, c = burst.shape
    h, w = h // 2 * 2, w // 2 * 2
    return burst[:, :h, :w].reshape(m, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4),
                                                                      dtype=np.float32)


def _runs(displacements: np.ndarray, frame: int) -> list[tuple]:
    """Items (frame, dy, dx_lo, n_dx) covering a set of (dy, dx), in search order of dy."""
    items = []
    for dy in sorted(set(displacements[:, 0].tolist()), key=lambda d: (abs(d), d > 0)):
        dxs = np.unique(displacements[displacements[:, 0] == dy, 1])
        breaks = np.nonzero(np.diff(dxs) != 1)[0] + 1
        for run in np.split(dxs, breaks):
            items.append((frame, dy, int(run[0]), len(run)))
    return items


def _fill_lanes(displacements: np.ndarray, limit: int) -> np.ndarray:
    """The displacements with every horizontal run widened, alternately right and left within
    |dx| <= limit, to a multiple of the kernel's LANES: the kernel computes that many lanes
    anyway, so the added candidates cost next to nothing."""
    lanes = _match_kernel.LANES
    out = []
    for dy in np.unique(displacements[:, 0]):
        dxs = set(displacements[displacements[:, 0] == dy, 1].tolist())
        while True:
            ordered = np.array(sorted(dxs))
            breaks = np.nonzero(np.diff(ordered) != 1)[0] + 1
            grown = False
            for run in np.split(ordered, breaks):
                lo, hi = int(run[0]), int(run[-1])
                missing = -len(run) % lanes
                while missing:
                    if hi < limit and (missing % 2 or lo <= -limit):
                        hi += 1
                    elif lo > -limit:
                        lo -= 1
                    else:
                        break
                    missing -= 1
                if hi - lo + 1 > len(run):
                    dxs.update(range(lo, hi + 1))
                    grown = True
            if not grown:
                break
        out += [(dy, dx) for dx in sorted(dxs)]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def _frequent(nnf: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` most frequent (dy, dx) of an nnf (ties: the smaller |dy| + |dx|, then the
    smaller dy, then the smaller dx).

    Counted with a histogram of the displacements' codes, not ``np.unique(axis=0)``: its
    sort of the rows took a third of the pyramid's time on 720p frames."""
    shifts = nnf[..., 1:].reshape(-1, 2).astype(np.int64)
    low = shifts.min(axis=0)
    span = shifts.max(axis=0) - low + 1
    counts = np.bincount((shifts[:, 0] - low[0]) * span[1] + shifts[:, 1] - low[1])
    codes = np.flatnonzero(counts)  # in increasing (dy, dx), as np.unique lists them
    values = np.stack([codes // span[1] + low[0], codes % span[1] + low[1]], axis=1)
    order = np.lexsort((np.abs(values).sum(axis=1), -counts[codes]))
    return values[order[:keep]]


def _widen(centers: np.ndarray, refine: int, limit: int, exclude: int) -> np.ndarray:
    """Every (dy, dx) within +-refine of the centers, inside |.| <= limit and outside the
    dense window |.| <= exclude."""
    offsets = np.stack(np.meshgrid(np.arange(-refine, refine + 1), np.arange(-refine, refine + 1),
                                   indexing="ij"), -1).reshape(-1, 2)
    candidates = np.unique((centers[:, None, :] + offsets[None]).reshape(-1, 2), axis=0)
    inside = (np.abs(candidates) <= limit).all(axis=1)
    outside_dense = (np.abs(candidates) > exclude).any(axis=1)
    return candidates[inside & outside_dense]


def _pyramid_items(burst, center, patch_size, radius, large_radius, levels, keep, refine,
                   frames) -> np.ndarray:
    """Candidate items of the finest level of a coarse-to-fine search (see search_patches),
    frame by frame: item (f, ...) searches frame ``frames[f]`` alone."""
    if levels is None:
        levels = int(np.ceil(np.log2(large_radius / 32))) if large_radius > 32 else 0
    pyramid = [burst]
    for _ in range(levels):
        if min(pyramid[-1].shape[1:3]) < 8:
            break
        pyramid.append(_downsample(pyramid[-1]))
    levels = len(pyramid) - 1
    if levels == 0:  # a small large window: search it whole
        return _dense_items(large_radius, len(frames))
    found = {f: None for f in frames}  # per frame: frequent (dy, dx) of the level below
    for level in range(levels, 0, -1):
        scale = 2 ** level
        small = pyramid[level]
        p = int(min(max(7, -(-patch_size // scale)), *small.shape[1:3]))
        state = _Search(small, center, p)
        dense = -(-radius // scale)
        limit = -(-large_radius // scale)
        for f in frames:
            if found[f] is None:  # coarsest level: the whole (scaled) large window
                items = _dense_items(limit)
            else:
                wide = _runs(_fill_lanes(_widen(2 * found[f], refine, limit, dense), limit), 0)
                items = np.concatenate([_dense_items(dense),
                                        np.array(wide, dtype=np.int64).reshape(-1, 4)])
            nnf, _ = state.run(items, step=1, sets=[[f]])
            found[f] = _frequent(nnf, keep)
    items = []
    for f in frames:
        if found[f] is not None:
            wide = _widen(2 * found[f], refine, large_radius, radius)
            items += _runs(_fill_lanes(wide, large_radius), f)
    return np.array(items, dtype=np.int64).reshape(-1, 4)


def ring_match(burst, center: int, patch_size: int, hole: int, search_radius: int,
               rows: slice | None = None, cols: slice | None = None, frames=None,
               return_distance: bool = False):
    """Match every pixel of the center frame by the ring around it (validation targets).

    The query of pixel (u, v) is the ``patch_size`` square centred on it less the ``hole``
    square centred on it; the candidates are the same rings around every pixel of the other
    frames within ``search_radius`` (dense; frames mirror-extended by ``patch_size // 2``).
    The matched pixel itself never enters the distance: when ``hole`` spans the noise's
    correlation length, the noise of the pixel that a ring target copies is close to
    independent of the input's noise at that pixel, whatever the search fitted elsewhere
    (``patch_size`` odd; ``hole`` odd and smaller, or 0).

    ``rows``, ``cols``: only the pixels of this region (of the frame, steps of 1); the work is
    that of a crop of the region and its search margin, whatever the frame's size.
    ``frames``: search only these frames of the burst (default: every frame but the center).

    Returns
    -------
    int16 [h, w, 3] over the region: (t, dy, dx), the match of pixel (u, v) is frame t's pixel
    (u + dy, v + dx); ties go to the first frame (of ``frames``), then the smallest dy, then
    dx. With ``return_distance``, also the match's ring distance, float32 [h, w] (the sum of
    squared differences over the ring).
    """
    burst = check_burst(burst, patch_size)
    _check_search(burst, center, search_radius)
    if patch_size % 2 == 0:
        raise InputError(f"ring matching needs an odd patch size, got {patch_size}")
    if hole < 0 or (hole and (hole % 2 == 0 or hole >= patch_size)):
        raise InputError(f"the hole must be 0 or odd and smaller than the patch ({patch_size}),"
                         f" got {hole}")
    half = patch_size // 2
    n_frames, height, width, _ = burst.shape
    if min(height, width) <= half:
        raise InputError(f"burst frames are {height}x{width}, too small for ring matching with "
                         f"a {patch_size}x{patch_size} window")
    rows = range(height)[rows or slice(None)]
    cols = range(width)[cols or slice(None)]
    if rows.step != 1 or cols.step != 1 or not len(rows) or not len(cols):
        raise InputError("ring matching needs a non-empty region with steps of 1")
    # the crop holding every candidate of the region and the rings around them
    top, bottom = max(0, rows.start - search_radius), min(height, rows.stop + search_radius)
    left, right = max(0, cols.start - search_radius), min(width, cols.stop + search_radius)
    extended = np.pad(burst[:, max(0, top - half):bottom + half,
                            max(0, left - half):right + half],
                      ((0, 0), (max(0, half - top), max(0, bottom + half - height)),
                       (max(0, half - left), max(0, right + half - width)), (0, 0)),
                      mode="reflect")
    others = [t for t in range(n_frames) if t != center] if frames is None else list(frames)
    if not others or center in others or not all(0 <= t < n_frames for t in others):
        raise InputError(f"ring matching searches frames other than the center ({center}) of "
                         f"{n_frames}, got {others}")
    distance, match = _ring_kernel.ring_search(
        np.ascontiguousarray(extended[center]), np.ascontiguousarray(extended[others]),
        search_radius, patch_size, hole, (rows.start - top, rows.stop - top),
        (cols.start - left, cols.stop - left), numba.get_num_threads())
    match[..., 0] = np.asarray(others)[match[..., 0]]
    match = match.astype(np.int16)
    return (match, distance) if return_distance else match


def ring_target(burst, match: np.ndarray) -> np.ndarray:
    """The target a :func:`ring_match` field crafts: float32 [H, W, C], pixel (u, v) of it is
    ``burst[t, u + dy, v + dx]``."""
    return ring_region(np.asarray(burst), match, slice(0, match.shape[0]),
                       slice(0, match.shape[1]))
