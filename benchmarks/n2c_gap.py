"""The gap to supervised training (issue 13, part 4): per case of the clean-free experiment,
patch-craft training against the same training on the store's clean tiles (N2C), at equal
steps, both from the shipped UNet, at the p that ``pcst-prep tune`` chose.

``--designs`` adds trainings that split the gap (synthetic noise, format-2 stores; the targets
below need the clean frames, so they measure and never choose):

- ``ideal``: the clean tile plus an independent draw of the store's noise: the best any
  single noisy target can do. What separates it from N2C is the noise itself: its variance
  at equal steps and, for noise that is not zero-mean given the image (the camera model's
  noise goes through the sRGB curve, which is concave), its bias, which every noisy target
  teaches the network.
- ``content``: the patch-craft target crafted from the clean frames with the same nnf and a
  kept offset, plus an independent draw of the noise: the crafted targets' content error
  without their fit to the input's noise. ``content`` minus ``ideal`` is what crafting costs;
  patch-craft minus ``content`` is what the match's fitting of the noise costs.
- ``ring``: per-pixel targets from the noisy burst (the ring matching of the validation
  targets, ``RING`` = (patch, hole), at the store's search radius): no clean frame is used;
  a candidate for part 4, whose content error is per pixel rather than per patch.
- ``unfiltered`` and ``filtered``: patch-craft training (the product's path, no clean frame)
  with the squared error (pcst-train's loss before 2026-11-27) and ``pixel_filter`` 0 (plain
  MSE, as before 2026-11-26) or ``--pixel-filter`` (the default 2: target pixels whose
  residual has a local energy above twice the tile's median are left out of the loss,
  :mod:`pcst_train.losses`).
- ``mae``: as ``filtered`` with the mean absolute error (``pcst-train --loss mae``, the
  default since 2026-11-27): the network learns the targets' median given the input, which
  for noise symmetric before a monotone curve (the camera model's) is the clean value.
- ``subpixel``: as ``filtered``, with each patch's match refined to half a pixel (the best of
  the 9 half-pixel shifts around the integer match, bilinear, by the noisy distance less the
  candidate's expected noise energy, whose variance and lag-1 correlations are estimated per
  burst from its residual at offset (0, 0); a diagonal shift's takes the diagonal correlation
  as the product of the two: no clean frame is used): a candidate for part 4.
- ``adaptive``: as ``filtered``, except that the target pixels that the pixel filter would
  drop take the patch-craft target of the case's p-15 store (same burst, a random offset):
  smaller patches where one displacement per large patch does not fit (non-rigid motion).
  The filter then runs on the combined target. No clean frame is used; it needs the case's
  ``p15.zarr`` (``clean_free.py`` builds it).
- ``blend``: as ``filtered``, on targets that average every pixel's p x p candidates (the
  pixel's copy in the match of each patch that holds it, i.e. the patch-craft targets of all
  p^2 offsets, flat): what training on a random offset learns in expectation, with less of
  the targets' variance; a candidate for part 4 (blending at the seams). No clean frame is
  used.
- ``unbiased``: as ``ideal`` less the noise's mean given the clean frame (its mean over
  ``BIAS_DRAWS`` draws on the whole frame): ``unbiased`` minus ``ideal`` is what the noise's
  bias costs, N2C minus ``unbiased`` what its variance costs at equal steps.

``--dropped`` prints, per case, the share of target pixels that the pixel filter drops (one
kept offset per training tile) and how much larger their content error is (the target crafted
from the clean frames with the same nnf, against the clean center) than the kept pixels'.

``--subpixel-error`` prints, per case, the content error (clean crafted against clean center,
per patch of the offset-(0, 0) grid inside the frame, 12 bursts) of the integer matches, of the
best half-pixel shift by the clean distance (what half-pixel matches could reach at most) and
of the shift that ``subpixel`` chooses from the noisy frames, and the share of the error that
the worst tenth of the patches carries.

``--burst-length-error`` prints, per case, what longer bursts (more candidate frames: M 7, 9,
11, 13 around frame 6 of each training sequence, matched at the case's p and search radius)
do to the offset-(0, 0) target: its content error (clean crafted against clean center) and its
noise fit (the target's noise regressed on the input's).

``--blend-error`` prints, per case (4 training bursts, the whole center frame), the content error
(clean blended against clean center), the noise fit (the target's noise regressed on the
input's) and the target's noise variance (against the input's) of the offset-(0, 0) target and
of three blends of every pixel's p^2 candidates: the pixel from the patch centred on it, a
Gaussian around the patch's centre (sigma p / 5) and flat (the mean over offsets, which training
on random offsets learns in expectation); and how much of the flat blend's content error is
left when 5% of the pixels are dropped by their residual energy (as the pixel filter), by the
spread of their candidates, or by the content error itself (the most any per-pixel evidence
could remove).

``--judge`` prints, per case, the final models of three trainings at tune's p (patch-craft
with the squared error as the grid's sweep trained it, the ``mae`` design, N2C) judged on the
store's held-out tiles by the validation loss with the absolute error (pcst-train's default)
and with the squared error, beside their PSNR, and whether each loss orders them as the PSNR
does.

``--noise-bias`` prints, per case, the noise's mean given the image (over ``BIAS_DRAWS``
draws on 4 frames of the clip): its average and the PSNR of clean + mean against clean; and
the same PSNR for a training in linear light, which would learn the mean of the
sRGB-decoded noisy frames (re-encoded; from two independent halves of the draws, whose errors'
product has the squared bias as its mean).

Run after ``benchmarks/clean_free.py --out OUT`` (it reuses OUT's stores, runs and
results.csv): ``.venv/bin/python benchmarks/n2c_gap.py --out runs/clean_free_v2``, and
with the designs ``... --designs ideal content unbiased ring`` (about 30 s a training on the
grid's stores; ring targets add 5 to 10 s a burst).
PSNR is measured on the held-out tiles' clean versions (``val_psnr``), never used to choose.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import csv
import time
from pathlib import Path

import numpy as np

DESIGNS = ("ideal", "content", "unbiased", "ring", "unfiltered", "filtered", "subpixel",
           "adaptive", "blend", "mae")
SMALL_P = 15  # the adaptive design's second patch size
FILTERED = ("filtered", "subpixel", "adaptive", "blend", "mae")  # trained with --pixel-filter
RING = (15, 3)
BIAS_DRAWS = 64
BURST_LENGTHS = (7, 9, 11, 13)  # --burst-length-error: frames 0 to 12 of a 14-frame sequence
NOISE_MARGIN = 4  # pixels of clean frame around a tile that its noise draw sees (demosaic, box)


def final_psnr(run: Path) -> float:
    with open(run / "log.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["val_psnr"]]
    return float(rows[-1]["val_psnr"])


def noise_draw(model, clean: np.ndarray, rows: slice, cols: slice, rng) -> np.ndarray:
    """A fresh draw of ``model``'s noise on the region [rows, cols] of the clean frame
    [H, W, C]: drawn on the region and a margin whose corner keeps the Bayer phase (even)."""
    top = max(0, rows.start - NOISE_MARGIN) & ~1
    left = max(0, cols.start - NOISE_MARGIN) & ~1
    bottom = min(clean.shape[0], rows.stop + NOISE_MARGIN)
    right = min(clean.shape[1], cols.stop + NOISE_MARGIN)
    window = clean[None, top:bottom, left:right]
    noise = model(window, rng)[0] - window[0]
    return noise[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]


HALF_SHIFTS = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]  # in half pixels


def half_pixel(frame: np.ndarray, y: int, x: int, sy: int, sx: int, p: int) -> np.ndarray:
    """The p x p patch of ``frame`` [H, W, C] at (y + sy / 2, x + sx / 2), bilinear."""
    rows = [y] if sy == 0 else [y, y + sy]
    cols = [x] if sx == 0 else [x, x + sx]
    return sum(frame[r:r + p, c:c + p] for r in rows for c in cols) / (len(rows) * len(cols))


def shiftable(frames: np.ndarray, y: int, x: int, p: int) -> bool:
    """Whether every half-pixel shift of the p x p patch at (y, x) lies inside ``frames``."""
    return 1 <= y and 1 <= x and y + p < frames.shape[1] and x + p < frames.shape[2]


def half_pixel_scores(frames: np.ndarray, center: int, t: int, i: int, j: int, y: int, x: int,
                      p: int, noise) -> list[float]:
    """Per shift of HALF_SHIFTS: the distance between the center's patch at (i, j) and frame
    ``t``'s shifted patch at (y, x) of ``frames`` [M, H, W, C], less the candidate's expected
    noise energy (``noise``: variance, lag-1 correlation down and across, as
    :func:`residual_noise` returns; interpolating two pixels of correlation rho leaves
    (1 + rho) / 2 of the variance, and a diagonal shift takes the product of the two)."""
    variance, rho_down, rho_across = noise
    patch = frames[center, i:i + p, j:j + p]
    return [np.mean((half_pixel(frames[t], y, x, sy, sx, p) - patch) ** 2)
            - variance * ((1 + rho_down) / 2 if sy else 1) * ((1 + rho_across) / 2 if sx else 1)
            for sy, sx in HALF_SHIFTS]


def residual_noise(extended: np.ndarray, nnf: np.ndarray, p: int, center: int):
    """(variance, lag-1 correlation down, across) of one frame's noise, from the burst's noisy
    residual r = t - y at offset (0, 0) (r holds two independent draws: half its variance),
    medians over the blocks of :func:`pcst_prep.tune.block_correlations` so that the content
    error weighs little."""
    from pcst_prep.craft import craft_region
    from pcst_prep.tune import CORRELATION_BLOCK as BLOCK, block_correlations

    pad = p - 1
    y = extended[center, pad:extended.shape[1] - pad, pad:extended.shape[2] - pad]
    r = craft_region(extended, nnf, p, (0, 0), slice(None), slice(None)) - y
    variances, across, down = [], [], []
    for channel in np.moveaxis(r, -1, 0):
        n = channel.shape[0] // BLOCK * BLOCK, channel.shape[1] // BLOCK * BLOCK
        blocks = channel[:n[0], :n[1]].reshape(n[0] // BLOCK, BLOCK, n[1] // BLOCK, BLOCK)
        variances.append(blocks.var(axis=(1, 3)).ravel())
        corr = block_correlations(channel, lags=(1,))
        across.append(corr[:, 0, 0])
        down.append(corr[:, 1, 0])
    return (float(np.median(np.concatenate(variances))) / 2,
            float(np.nanmedian(np.concatenate(down))), float(np.nanmedian(np.concatenate(across))))


def subpixel_region(tiles, rows: slice, cols: slice, offset, noise) -> np.ndarray:
    """The region [rows, cols] of the burst's patch-craft target at ``offset`` with half-pixel
    matches (``subpixel``); each patch's shift is chosen once (``tiles.shift``)."""
    from pcst_prep.craft import _blocks, _patch_origin

    p, pad, extended = tiles.patch_size, tiles.patch_size - 1, tiles.extended
    k, l = offset  # noqa: E741 (craft_region's names)
    out = np.empty((rows.stop - rows.start, cols.stop - cols.start, extended.shape[3]),
                   extended.dtype)
    for a, b in _blocks(rows.start, rows.stop, k, p):
        i = int(_patch_origin(np.array(a), k, p))
        for c, d in _blocks(cols.start, cols.stop, l, p):
            j = int(_patch_origin(np.array(c), l, p))
            t, dy, dx = (int(v) for v in tiles.nnf[i, j])
            y, x = i + dy, j + dx
            key = (i, j)
            if key not in tiles.shift:
                tiles.shift[key] = (HALF_SHIFTS[int(np.argmin(half_pixel_scores(
                    extended, tiles.center, t, i, j, y, x, p, noise)))]
                    if shiftable(extended, y, x, p) else (0, 0))
            sy, sx = tiles.shift[key]
            patch = half_pixel(extended[t], y, x, sy, sx, p)
            top, left = a + pad - i, c + pad - j
            out[a - rows.start:b - rows.start, c - cols.start:d - cols.start] = \
                patch[top:top + b - a, left:left + d - c]
    return out


@contextlib.contextmanager
def patched(cls, **methods):
    """While active, ``cls``'s attributes named in ``methods`` are replaced by them."""
    originals = {name: getattr(cls, name) for name in methods}
    for name, method in methods.items():
        setattr(cls, name, method)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)


@contextlib.contextmanager
def subpixel_targets():
    """While active, the trainer's patch-craft targets are ``subpixel``'s (workers 0)."""
    from pcst_train.data import BurstTiles

    original_init = BurstTiles.__init__

    def init(self, group, table, burst, clean=False, shared=None):
        original_init(self, group, table, burst, clean=clean, shared=shared)
        self.shift = {}
        self.noise = residual_noise(self.extended, self.nnf, self.patch_size, self.center)

    def target(self, row, offset):
        return subpixel_region(self, *self._region(row), tuple(int(o) for o in offset),
                               self.noise)

    with patched(BurstTiles, __init__=init, target=target):
        yield


def blended(extended: np.ndarray, nnf: np.ndarray, p: int, weights=None) -> np.ndarray:
    """float32 [H, W, C]: every pixel's candidates from the p x p patches that hold it (the
    pixel at (u, v) of the patch, its match's pixel there), averaged with ``weights[u, v]``
    (flat when None: the mean over offsets of the patch-craft targets, which training on a
    random offset learns in expectation)."""
    pad = p - 1
    height, width = extended.shape[1] - 2 * pad, extended.shape[2] - 2 * pad
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    weights = np.ones((p, p)) if weights is None else weights
    total = np.zeros((height, width, extended.shape[3]), np.float64)
    for u, v in zip(*np.nonzero(weights)):
        t, dy, dx = np.moveaxis(nnf[ys + pad - u, xs + pad - v].astype(np.intp), -1, 0)
        total += weights[u, v] * extended[t, ys + pad + dy, xs + pad + dx]
    return (total / weights.sum()).astype(np.float32)


@contextlib.contextmanager
def blend_targets():
    """While active, the trainer's patch-craft targets are ``blend``'s (workers 0)."""
    from pcst_train.data import BurstTiles

    original_init = BurstTiles.__init__
    frames = {}

    def init(self, group, table, burst, clean=False, shared=None):
        original_init(self, group, table, burst, clean=clean, shared=shared)
        key = (int(table["source"][burst]), tuple(int(f) for f in table["frames"][burst]),
               self.center)
        if key not in frames:  # once per burst, not at every epoch
            frames[key] = blended(self.extended, self.nnf, self.patch_size)
        self.blend = frames[key]

    def target(self, row, offset):
        return self.blend[self._region(row)]

    with patched(BurstTiles, __init__=init, target=target):
        yield


@contextlib.contextmanager
def adaptive_targets(small_store: Path, factor: float, seed: int = 0):
    """While active, the trainer's patch-craft targets are ``adaptive``'s (workers 0)."""
    import torch

    from pcst_prep import store as zstore
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_train.data import BurstTiles
    from pcst_train.losses import pixel_filter_mask

    small = zstore.open_store(small_store)
    small_table, small_bias = zstore.burst_table(small), zstore.read_filter(small).r_center
    p = int(zstore.parameters(small)["patch_size"])
    rng = np.random.default_rng([seed, 11])
    original_init, original_target = BurstTiles.__init__, BurstTiles.target

    def init(self, group, table, burst, clean=False, shared=None):
        original_init(self, group, table, burst, clean=clean, shared=shared)
        for name in ("source", "frames", "center"):
            if not np.array_equal(table[name][burst], small_table[name][burst]):
                raise SystemExit(f"{small_store}: burst {burst} differs from the case's store")
        pad = self.patch_size - 1
        frames = self.extended[:, pad:self.extended.shape[1] - pad,
                               pad:self.extended.shape[2] - pad]
        self.small = extend_frames(np.ascontiguousarray(frames), p), zstore.read_nnf(small, burst)
        self.bias = zstore.read_filter(group).r_center

    def target(self, row, offset):
        large = original_target(self, row, offset)
        pair = [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
                for a in (self.input(row), large - self.bias)]
        keep = pixel_filter_mask(*pair, factor)[0, 0].numpy()
        if keep.all():
            return large
        extended, nnf = self.small
        corner = (int(rng.integers(p)), int(rng.integers(p)))
        other = craft_region(extended, nnf, p, corner, *self._region(row))
        return np.where(keep[..., None], large, other - small_bias + self.bias)

    with patched(BurstTiles, __init__=init, target=target):
        yield


@contextlib.contextmanager
def targets_of(design: str, noise, seed: int = 0):
    """While active, the trainer's clean targets (``clean_targets``) are those of ``design``
    (see the module docstring); single-process loading only (workers 0)."""
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_prep import store as zstore
    from pcst_train.data import BurstTiles

    from pcst_prep.matching import ring_match, ring_target

    rng = np.random.default_rng([seed, 7])
    rings, biases = {}, {}
    original_init = BurstTiles.__init__

    def init(self, group, table, burst, clean=False, shared=None):
        original_init(self, group, table, burst, clean=clean, shared=shared)
        if clean and design == "content":
            source, frames = int(table["source"][burst]), table["frames"][burst]
            self.extended_clean = extend_frames(
                zstore.read_frames(group, source, frames, noisy=False), self.patch_size)
        if clean and design == "ring":
            source, frames = int(table["source"][burst]), table["frames"][burst]
            key = (source, tuple(int(f) for f in frames), self.center)
            if key not in rings:
                noisy = zstore.read_frames(group, source, frames, noisy=True)
                radius = int(zstore.parameters(group)["search_radius"])
                rings[key] = ring_target(noisy, ring_match(noisy, self.center, *RING, radius))
            self.ring = rings[key]
        if clean and design == "unbiased":
            key = (int(table["source"][burst]), int(table["frames"][burst][self.center]))
            if key not in biases:  # once per frame, not at every epoch
                frame = self.clean_frame[None]
                biases[key] = sum(noise(frame, rng)[0] - frame[0]
                                  for _ in range(BIAS_DRAWS)) / BIAS_DRAWS
            self.bias = biases[key]

    def clean(self, row):
        rows, cols = self._region(row)
        if design == "ideal":
            base = self.clean_frame[rows, cols]
        elif design == "ring":
            return self.ring[rows, cols]
        elif design == "unbiased":
            base = self.clean_frame[rows, cols] - self.bias[rows, cols]
        else:
            kept = self.offsets(row)
            offset = tuple(int(o) for o in kept[rng.integers(len(kept))])
            base = craft_region(self.extended_clean, self.nnf, self.patch_size, offset, rows, cols)
        return base + noise_draw(noise, self.clean_frame, rows, cols, rng)

    with patched(BurstTiles, __init__=init, clean=clean):
        yield


def subpixel_error(store: Path, bursts: int = 12) -> dict:
    """Per kind of match (integer, best half-pixel shift by the clean distance, ``subpixel``'s
    choice), the mean content error per patch and the worst tenth's share of it (see the
    module docstring)."""
    from pcst_train.data import BurstTiles
    from pcst_prep import store as zstore
    from pcst_prep.craft import extend_frames

    group = zstore.open_store(store)
    table = zstore.burst_table(group)
    errors = {"integer": [], "best half-pixel": [], "subpixel's choice": []}
    n_bursts = len(table["tiles"]) - 1
    for burst in np.unique(np.linspace(0, n_bursts - 1, bursts).astype(int)):
        tiles = BurstTiles(group, table, int(burst))
        p, pad, noisy = tiles.patch_size, tiles.patch_size - 1, tiles.extended
        noise = residual_noise(noisy, tiles.nnf, p, tiles.center)
        clean = extend_frames(zstore.read_frames(group, int(table["source"][burst]),
                                                 table["frames"][burst], noisy=False), p)
        for i in range(pad, clean.shape[1] - pad - p + 1, p):
            for j in range(pad, clean.shape[2] - pad - p + 1, p):
                t, dy, dx = (int(v) for v in tiles.nnf[i, j])
                y, x = i + dy, j + dx
                if not shiftable(clean, y, x, p):
                    continue
                content = half_pixel_scores(clean, tiles.center, t, i, j, y, x, p, (0, 0, 0))
                chosen = half_pixel_scores(noisy, tiles.center, t, i, j, y, x, p, noise)
                errors["integer"].append(content[HALF_SHIFTS.index((0, 0))])
                errors["best half-pixel"].append(min(content))
                errors["subpixel's choice"].append(content[int(np.argmin(chosen))])
    out = {}
    for kind, values in errors.items():
        values = np.sort(values)
        out[kind] = (float(values.mean()), float(values[int(0.9 * len(values)):].sum()
                                                 / values.sum()))
    return out


BLEND_WEIGHTS = ("one offset", "centre pixel", "gaussian", "flat")


def blend_weights(p: int, kind: str) -> np.ndarray:
    """[p, p] weights of a patch's pixels in :func:`blended`: ``centre pixel`` (each pixel
    from the patch centred on it), ``gaussian`` (sigma p / 5 around the patch's centre) or
    ``flat``."""
    u = np.arange(p) - (p - 1) / 2
    if kind == "centre pixel":
        w = (np.abs(u) < 0.6).astype(float)
    elif kind == "gaussian":
        w = np.exp(-u ** 2 / (2 * (p / 5) ** 2))
    else:
        w = np.ones(p)
    return np.outer(w, w)


def blend_error(store: Path, bursts: int = 4, drop: float = 0.05) -> dict:
    """Per way of blending a pixel's candidates (``BLEND_WEIGHTS``; ``one offset`` is the
    offset-(0, 0) patch-craft target), on the whole center frame of ``bursts`` training bursts:
    (content error, noise fit, target noise variance / input noise variance). Under the key
    ``evidence``, the share of the flat blend's content error left when the ``drop`` share of
    pixels of highest residual energy (7 x 7, as the pixel filter), of highest spread of the
    candidates (7 x 7), or of highest content error (the clean frames: the best any per-pixel
    evidence could do) is dropped (see the module docstring)."""
    from scipy.ndimage import uniform_filter

    from pcst_prep import store as zstore
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_train.data import BurstTiles

    group = zstore.open_store(store)
    table = zstore.burst_table(group)
    n_bursts = len(table["tiles"]) - 1
    found = {kind: [] for kind in BLEND_WEIGHTS}
    evidence = {"residual": [0.0, 0.0], "spread": [0.0, 0.0], "clean": [0.0, 0.0]}
    for burst in np.unique(np.linspace(0, n_bursts - 1, bursts).astype(int)):
        tiles = BurstTiles(group, table, int(burst), clean=True)
        p, nnf, y, clean = tiles.patch_size, tiles.nnf, tiles.input_frame, tiles.clean_frame
        clean_burst = extend_frames(zstore.read_frames(
            group, int(table["source"][burst]), table["frames"][burst], noisy=False), p)
        noise = y - clean
        for kind in BLEND_WEIGHTS:
            if kind == "one offset":
                pair = [craft_region(e, nnf, p, (0, 0), slice(None), slice(None))
                        for e in (tiles.extended, clean_burst)]
            else:
                pair = [blended(e, nnf, p, blend_weights(p, kind))
                        for e in (tiles.extended, clean_burst)]
            target_noise = pair[0] - pair[1]
            found[kind].append((np.mean((pair[1] - clean) ** 2),
                                np.mean(target_noise * noise) / np.mean(noise ** 2),
                                np.mean(target_noise ** 2) / np.mean(noise ** 2)))
            if kind == "flat":
                error = ((pair[1] - clean) ** 2).sum(-1)
                spread = (blended(tiles.extended ** 2, nnf, p) - pair[0] ** 2).sum(-1)
                scores = {"residual": uniform_filter(((pair[0] - y) ** 2).sum(-1), 7),
                          "spread": uniform_filter(spread, 7), "clean": error}
                for name, score in scores.items():
                    keep = score <= np.quantile(score, 1 - drop)
                    evidence[name][0] += error[keep].sum()
                    evidence[name][1] += error.sum()
    out = {kind: tuple(float(v) for v in np.mean(values, axis=0))
           for kind, values in found.items()}
    out["evidence"] = {name: left / total for name, (left, total) in evidence.items()}
    return out


def burst_length_error(store: Path, lengths=BURST_LENGTHS, center: int = 6) -> dict:
    """Per burst length M: (content error, noise fit) of the offset-(0, 0) target of frame
    ``center`` of every training sequence, matched on the M frames around it (see the module
    docstring)."""
    from pcst_prep import store as zstore
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_prep.matching import search_patches

    group = zstore.open_store(store)
    parameters = zstore.parameters(group)
    p, radius = int(parameters["patch_size"]), int(parameters["search_radius"])
    sources = sorted({int(s) for s in zstore.burst_table(group)["source"]})
    found = {}
    for m in lengths:
        content, fit = [], []
        for source in sources:
            frames = list(range(center - m // 2, center + m // 2 + 1))
            noisy = zstore.read_frames(group, source, frames, noisy=True)
            clean = zstore.read_frames(group, source, frames, noisy=False)
            nnf = search_patches(noisy, m // 2, p, radius)[0]
            crafted = [craft_region(extend_frames(b, p), nnf, p, (0, 0), slice(None),
                                    slice(None)) for b in (noisy, clean)]
            noise = noisy[m // 2] - clean[m // 2]
            content.append(np.mean((crafted[1] - clean[m // 2]) ** 2))
            fit.append(np.mean((crafted[0] - crafted[1]) * noise) / np.mean(noise ** 2))
        found[m] = (float(np.mean(content)), float(np.mean(fit)))
    return found


def noise_bias(clip: str, noise_name: str,
               draws: int = BIAS_DRAWS) -> tuple[float, float, float]:
    """(mean, PSNR dB, PSNR dB in linear light) of the noise's mean given the image, on 4
    frames of ``clip`` (1 of every 14); the mean of ``draws`` draws, its own variance taken out
    of the squared error. In linear light: the re-encoded mean of the decoded noisy frames, its
    squared bias the mean product of two independent halves' errors."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from clean_free import NOISES
    from quality import clip_frames

    from pcst_prep.noise import get_noise_model, srgb_decode, srgb_encode

    frames = clip_frames(clip)[::14][:4]
    name, params, _ = NOISES[noise_name]
    model = get_noise_model(name, **params)
    rng = np.random.default_rng(0)
    total, power = np.zeros(frames.shape), 0.0
    linear = [np.zeros(frames.shape), np.zeros(frames.shape)]  # two halves of the draws
    for draw in range(draws):
        noisy = model(frames, rng)
        noise = (noisy - frames).astype(np.float64)
        total += noise
        power += (noise ** 2).mean()
        linear[draw % 2] += srgb_decode(noisy)
    mean = total / draws
    squared = (mean ** 2).mean() - power / draws / draws
    halves = [srgb_encode((h / (draws // 2)).astype(np.float32)) - frames for h in linear]
    squared_linear = float(np.mean(halves[0].astype(np.float64) * halves[1]))
    return (float(mean.mean()), float(-10 * np.log10(max(squared, 1e-12))),
            float(-10 * np.log10(max(squared_linear, 1e-12))))


def dropped_pixels(store: Path, factor: float) -> tuple[float, float]:
    """(share dropped, content error dropped / kept) of the pixel filter at ``factor`` on the
    training tiles of a format-2 store with synthetic noise (see the module docstring)."""
    import torch

    from pcst_prep import store as zstore
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_train.data import BurstTiles
    from pcst_train.losses import pixel_filter_mask

    group = zstore.open_store(store)
    table = zstore.burst_table(group)
    r_center = zstore.read_filter(group).r_center  # training subtracts it from the target
    kept, dropped = [], []
    for burst in range(len(table["tiles"]) - 1):
        tiles = BurstTiles(group, table, burst, clean=True)
        frames = zstore.read_frames(group, int(table["source"][burst]), table["frames"][burst],
                                    noisy=False)
        clean_burst = extend_frames(frames, tiles.patch_size)
        for row in tiles.rows:
            offset = tuple(int(o) for o in tiles.offsets(row)[0])
            region = tiles._region(row)
            content = craft_region(clean_burst, tiles.nnf, tiles.patch_size, offset,
                                   *region) - tiles.clean(row)
            pair = [torch.from_numpy(a.transpose(2, 0, 1))[None]
                    for a in (tiles.input(row), tiles.target(row, offset) - r_center)]
            keep = pixel_filter_mask(*pair, factor)[0, 0].numpy()
            error = (content ** 2).sum(-1)
            kept.append(error[keep])
            dropped.append(error[~keep])
    kept, dropped = np.concatenate(kept), np.concatenate(dropped)
    return len(dropped) / (len(kept) + len(dropped)), float(dropped.mean() / kept.mean())


def dropped_report(store: Path, case: dict, args) -> str:
    share, ratio = dropped_pixels(store, args.pixel_filter)
    return (f": the pixel filter drops {100 * share:.1f}% of the target pixels, whose content "
            f"error is {ratio:.0f}x the kept ones'")


def subpixel_report(store: Path, case: dict, args) -> str:
    return ": content error per patch " + ", ".join(
        f"{kind} {mean:.2e} (worst tenth {100 * share:.0f}%)"
        for kind, (mean, share) in subpixel_error(store).items())


def burst_length_report(store: Path, case: dict, args) -> str:
    return f" (p {case['tune_p']}): " + ", ".join(
        f"M {m} content error {error:.3e} noise fit {fit:.3f}"
        for m, (error, fit) in burst_length_error(store).items())


def blend_report(store: Path, case: dict, args) -> str:
    found = blend_error(store)
    evidence = found.pop("evidence")
    return (f" (p {case['tune_p']}): " + ", ".join(
        f"{kind} content error {error:.3e} noise fit {fit:.3f} noise variance {var:.2f}"
        for kind, (error, fit, var) in found.items())
        + "; flat blend's content error left after dropping 5% of pixels by "
        + ", ".join(f"{name} {100 * left:.0f}%" for name, left in evidence.items()))


def judge_report(store: Path, case: dict, args) -> str:
    """``--judge``: the final models of clean_free.py's patch-craft run (seed 0; the grid's
    trained with the squared error), the ``mae`` run and N2C, each named with the error it
    trained with, judged by the validation loss under each error (pcst-train's validation
    filter) and by their PSNR on the same held-out tiles."""
    from pcst_train.checkpoints import load_model
    from pcst_train.config import LOSSES
    from pcst_train.train import HeldOut

    p, seed = case["tune_p"], f"_seed{args.seed}" if args.seed else ""
    runs = [store.parent / name for name in  # clean_free.py's run (seed 0 only), mae, N2C
            ([f"run_p{p}"] if not seed else [])
            + [f"run_mae{args.pixel_filter:g}_p{p}{seed}", f"run_n2c_p{p}{seed}"]]
    held = {loss: HeldOut(store, loss=loss) for loss in LOSSES}
    figures = {}
    for run in runs:
        if not (run / "final.pt").exists():
            return f": {run.name} has no final.pt (train --designs mae first)"
        model, state = load_model(run / "final.pt")
        found = {loss: h.evaluate(model, "cpu") for loss, h in held.items()}
        trained = (state.get("train_config") or {}).get("loss") or "mse"
        figures[f"{run.name} ({trained})"] = ({loss: f["val_loss"] for loss, f in found.items()},
                             found["mse"]["val_psnr"])
    order = lambda key: sorted(figures, key=key)  # noqa: E731  best first
    truth = order(lambda name: -figures[name][1])
    ranked = lambda loss: order(lambda name: figures[name][0][loss])  # noqa: E731
    return (f" (p {p}): " + ", ".join(
        f"{name} PSNR {psnr:.2f} " + " ".join(f"{loss} {value:.6g}"
                                              for loss, value in losses.items())
        for name, (losses, psnr) in figures.items()) + "; ranked like the PSNR by "
        + ", ".join(f"{loss}: {'yes' if ranked(loss) == truth else 'no'}" for loss in LOSSES))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/clean_free"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--patch-size", type=int, default=None,
                        help="Train on the case's store of this p instead of tune's (for "
                        "instance the p that clean_free.py --trial chose); the patch-craft "
                        "column is then clean_free.py's run at that p.")
    parser.add_argument("--at-trial-p", action="store_true",
                        help="Train each case at the p that clean_free.py --trial chose where "
                        "it ran (OUT/trial.csv), else at tune's: the p a user trains at.")
    parser.add_argument("--seed", type=int, default=0,
                        help="Training seed (batches, augmentations); runs of a seed other than "
                        "0 get their own folders (..._seedN) and no patch-craft column (that "
                        "is clean_free.py's seed-0 run): compare --designs unfiltered filtered.")
    parser.add_argument("--designs", nargs="*", default=[], choices=DESIGNS,
                        help="Also train on these targets (see the module docstring).")
    parser.add_argument("--clips", nargs="*", help="Only these clips (default: every case).")
    parser.add_argument("--noises", nargs="*", help="Only these noises (default: every case).")
    parser.add_argument("--pixel-filter", type=float, default=2.0,
                        help="The filtered design's pixel filter (pcst-train --pixel-filter).")
    parser.add_argument("--dropped", action="store_true",
                        help="Print what the pixel filter drops per case (see the module "
                        "docstring) and stop.")
    parser.add_argument("--subpixel-error", action="store_true",
                        help="Print the content error of integer and half-pixel matches per "
                        "case (see the module docstring) and stop.")
    parser.add_argument("--burst-length-error", action="store_true",
                        help="Print the content error and noise fit of longer bursts' targets "
                        "per case (see the module docstring) and stop.")
    parser.add_argument("--blend-error", action="store_true",
                        help="Print the content error and noise fit of blended targets per "
                        "case (see the module docstring) and stop.")
    parser.add_argument("--judge", action="store_true",
                        help="Judge each case's patch-craft (clean_free.py's), mae and N2C models "
                        "by the validation loss under each error and by PSNR (see the module "
                        "docstring), and stop.")
    parser.add_argument("--noise-bias", action="store_true",
                        help="Print each case's noise bias (see the module docstring) and stop; "
                        "with --clips and --noises, of those cases (no store needed).")
    args = parser.parse_args()
    from pcst_prep import store as zstore
    from pcst_prep.noise import get_noise_model
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    cases = []
    if (args.out / "results.csv").exists() or not args.noise_bias:
        with open(args.out / "results.csv") as f:
            cases = [c for c in csv.DictReader(f)
                     if (not args.clips or c["clip"] in args.clips)
                     and (not args.noises or c["noise"] in args.noises)]
    reports = {"dropped": dropped_report, "subpixel_error": subpixel_report,
               "burst_length_error": burst_length_report, "blend_error": blend_report,
               "judge": judge_report}
    for flag, report in reports.items():
        if getattr(args, flag):  # one line a case, on its store at tune's p
            for case in cases:
                store = args.out / case["clip"] / case["noise"] / f"p{case['tune_p']}.zarr"
                print(f"{case['clip']} {case['noise']}{report(store, case, args)}", flush=True)
            return
    if args.noise_bias:  # needs no store: --clips and --noises name the cases outright
        if args.clips and args.noises:
            cases = [{"clip": c, "noise": n} for c in args.clips for n in args.noises]
        elif not cases:
            parser.error("--noise-bias: give --clips and --noises, or an --out holding "
                         "results.csv")
        for case in cases:
            mean, psnr, linear = noise_bias(case["clip"], case["noise"])
            print(f"{case['clip']} {case['noise']}: noise mean given the image {mean:+.4f} on "
                  f"average, clean + mean against clean {psnr:.1f} dB (in linear light "
                  f"{linear:.1f} dB)", flush=True)
        return
    trial_p = {}  # --at-trial-p: the p that clean_free.py --trial chose, where it ran
    if args.at_trial_p:
        if not (args.out / "trial.csv").exists():
            parser.error(f"--at-trial-p: {args.out / 'trial.csv'} not found (run clean_free.py "
                         "--trial first)")
        with open(args.out / "trial.csv") as f:
            trial_p = {(r["clip"], r["noise"]): int(r["trial_p"]) for r in csv.DictReader(f)}
    head = ["clip", "noise", "p" if args.patch_size else
            "p (the trial's, else tune's)" if args.at_trial_p else "p (tune's)", "patch-craft",
            *args.designs, "N2C", "gap"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    started = time.perf_counter()
    for case in cases:
        folder = args.out / case["clip"] / case["noise"]
        p = (args.patch_size or trial_p.get((case["clip"], case["noise"]))
             or int(case["tune_p"]))
        store = folder / f"p{p}.zarr"
        config = TrainConfig(steps=args.steps, lr=args.lr, batch_size=16, seed=args.seed,
                             validate_every=args.every, clean_targets=True, pixel_filter=0.0,
                             loss="mse")
        seed = f"_seed{args.seed}" if args.seed else ""
        n2c = folder / f"run_n2c_p{p}{seed}"
        if not (n2c / "final.pt").exists():
            train(store, n2c, config, progress=False)
        scores = []
        for design in args.designs:
            tag = f"{design}{args.pixel_filter:g}" if design in FILTERED else design
            run = folder / f"run_{tag}_p{p}{seed}"
            if design not in ("unfiltered", "filtered") and zstore.format_version(
                    zstore.open_store(store)) != 2:
                raise SystemExit(f"{store}: the {design} targets need a format-2 store")
            if design in ("unfiltered", "filtered") and not (run / "final.pt").exists():
                factor = args.pixel_filter if design == "filtered" else 0.0
                plain = dataclasses.replace(config, clean_targets=False, pixel_filter=factor)
                train(store, run, plain, progress=False)
            elif design == "subpixel" and not (run / "final.pt").exists():
                plain = dataclasses.replace(config, clean_targets=False,
                                            pixel_filter=args.pixel_filter)
                with subpixel_targets():
                    train(store, run, plain, progress=False)
            elif design == "blend" and not (run / "final.pt").exists():
                plain = dataclasses.replace(config, clean_targets=False,
                                            pixel_filter=args.pixel_filter)
                with blend_targets():
                    train(store, run, plain, progress=False)
            elif design == "mae" and not (run / "final.pt").exists():
                plain = dataclasses.replace(config, clean_targets=False,
                                            pixel_filter=args.pixel_filter, loss="mae")
                train(store, run, plain, progress=False)
            elif design == "adaptive" and not (run / "final.pt").exists():
                plain = dataclasses.replace(config, clean_targets=False,
                                            pixel_filter=args.pixel_filter)
                with adaptive_targets(folder / f"p{SMALL_P}.zarr", args.pixel_filter,
                                      args.seed):
                    train(store, run, plain, progress=False)
            elif not (run / "final.pt").exists():
                parameters = zstore.parameters(zstore.open_store(store))
                noise = get_noise_model(parameters["noise"], **parameters["noise_params"])
                with targets_of(design, noise):
                    train(store, run, config, progress=False)
            scores.append(final_psnr(run))
        sup = final_psnr(n2c)
        if seed:  # clean_free.py's patch-craft run is seed 0's: compare the designs instead
            lines.append(f"| {case['clip']} | {case['noise']} | {p} | - | "
                         + "".join(f"{s:.2f} | " for s in scores) + f"{sup:.2f} | - |")
        else:
            pc = final_psnr(folder / f"run_p{p}")
            lines.append(f"| {case['clip']} | {case['noise']} | {p} | {pc:.2f} | "
                         + "".join(f"{s:.2f} | " for s in scores)
                         + f"{sup:.2f} | {sup - pc:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    tags = [f"{d}{args.pixel_filter:g}" if d in FILTERED else d for d in args.designs]
    name = ("n2c_gap" + "".join(f"_{t}" for t in tags)
            + (f"_p{args.patch_size}" if args.patch_size else "")
            + ("_trial_p" if args.at_trial_p else "")
            + (f"_seed{args.seed}" if args.seed else "") + ".md")
    (args.out / name).write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
