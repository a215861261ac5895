"""Training targets: the kinds of target a build can make, and patch-craft targets.

For offset (k, l) the frame is split into p x p patches whose boundaries lie on rows
y = k (mod p) and columns x = l (mod p). Each patch is replaced by its nearest neighbour from
the nnf, so every pixel (y, x) takes the value of its patch's match at the same position inside
the patch. The p^2 offsets give p^2 different targets from one nnf, each a cheap gather.

A *target kind* (:class:`TargetKind`) is how a build scores and crafts targets of a burst; the
build knows kinds only through that seam. To add one (for instance targets matched on a guide
image), write a class with the four methods and add it to :data:`TARGET_KINDS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from .craft import craft_region, ring_region
from .errors import InputError

if TYPE_CHECKING:
    from .config import BuildConfig


def craft_target(burst, nnf: np.ndarray, patch_size: int, offset: tuple[int, int]) -> np.ndarray:
    """One patch-craft target of a burst's center frame.

    Parameters
    ----------
    burst : float32 [M, H, W, C]
        The burst the nnf was computed on.
    nnf : int16 [H + P, W + P, 3]
        From :func:`pcst_prep.match_patches` with the same ``patch_size``.
    patch_size : int
        p.
    offset : (k, l)
        0 <= k, l < p: patch boundaries at rows k (mod p) and columns l (mod p).

    Returns
    -------
    float32 [H, W, C]

    Examples
    --------
    >>> from pcst_prep import match_patches
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.random((10, 12, 3), dtype=np.float32)
    >>> burst = np.stack([frame, frame + 0.1, frame])
    >>> nnf, _ = match_patches(burst, center=1, patch_size=4, search_radius=1)
    >>> target = craft_target(burst, nnf, patch_size=4, offset=(1, 3))
    >>> bool(np.array_equal(target, frame))  # every match is the same patch of frame 0 or 2
    True
    """
    from .matching import check_burst, extend_frames

    burst = check_burst(burst, patch_size)
    return craft_region(extend_frames(burst, patch_size), nnf, patch_size, offset,
                        slice(None), slice(None))


def craft_targets(burst, nnf: np.ndarray, patch_size: int, offsets) -> np.ndarray:
    """Several targets at once: float32 [len(offsets), H, W, C]. The burst is extended once."""
    from .matching import check_burst, extend_frames

    burst = check_burst(burst, patch_size)
    extended = extend_frames(burst, patch_size)
    everything = slice(None)
    return np.stack([craft_region(extended, nnf, patch_size, tuple(o), everything, everything)
                     for o in offsets])


def all_offsets(patch_size: int) -> np.ndarray:
    """Every offset (k, l), 0 <= k, l < p, row-major: int32 [p * p, 2]."""
    k, l = np.divmod(np.arange(patch_size * patch_size), patch_size)
    return np.stack([k, l], axis=1).astype(np.int32)


# --- target kinds ----------------------------------------------------------------------------


class TargetKind(Protocol):
    """How a build makes the targets of a burst.

    A kind scores every candidate target of every tile (stage 1 of a build), then crafts the
    chosen ones tile by tile (stage 3), possibly in another process: ``prepare`` turns the
    burst into what ``craft`` reads, once per burst.
    """

    def offsets(self, config: BuildConfig) -> np.ndarray:
        """int [n_targets, 2]: the candidate targets of every tile, as (k, l) offsets."""

    def score(self, burst: np.ndarray, center: int, config: BuildConfig):
        """(s_yr, r_mean [n_targets, n_i, n_j], nnf or None): tile statistics of every
        candidate target, and the matching to store for crafting (None if none is needed)."""

    def prepare(self, burst: np.ndarray, center: int, config: BuildConfig):
        """What :meth:`craft` reads for this burst."""

    def craft(self, prepared, nnf, config: BuildConfig, offset, rows: slice,
              cols: slice) -> np.ndarray:
        """float32 [len(rows), len(cols), C]: the target at ``offset`` over a region."""


class PatchCraft:
    """The method: each p x p patch of the center frame replaced by its nearest neighbour in
    the burst's other frames, at each of the p^2 offsets of the patch grid."""

    def offsets(self, config):
        return all_offsets(config.patch_size)

    def match(self, burst, center, config, extended=None) -> np.ndarray:
        """The nnf of the burst's center frame (``extended``: the burst already extended)."""
        from .matching import search_patches

        return search_patches(burst, center, config.patch_size, config.search_radius,
                              search=config.search, large_radius=config.large_radius,
                              grid_step=config.grid_step, extended=extended)[0]

    def score(self, burst, center, config):
        from .matching import extend_frames
        from .statistics import offset_tile_stats

        extended = extend_frames(burst, config.patch_size)
        nnf = self.match(burst, center, config, extended)
        s_yr, r_mean = offset_tile_stats(extended, center, nnf, config.patch_size,
                                         self.offsets(config), config.tile_size,
                                         config.tile_stride)
        return s_yr, r_mean, nnf

    def prepare(self, burst, center, config):
        from .matching import extend_frames

        return extend_frames(burst, config.patch_size)

    def craft(self, prepared, nnf, config, offset, rows, cols):
        return craft_region(prepared, nnf, config.patch_size, tuple(offset), rows, cols)


class Neighbour:
    """A naive Noise2Noise ablation: the raw next frame of the burst (the previous one for the
    last frame), no matching. Only sound without motion."""

    def offsets(self, config):
        return np.zeros((1, 2), np.int32)

    @staticmethod
    def frame(burst, center):
        return center + 1 if center + 1 < len(burst) else center - 1

    def score(self, burst, center, config):
        from .statistics import tile_stats

        s_yr, r_mean = tile_stats(burst[center], burst[self.frame(burst, center)],
                                  config.tile_size, config.tile_stride)
        return s_yr[None], r_mean[None], None

    def prepare(self, burst, center, config):
        return burst[self.frame(burst, center)]

    def craft(self, prepared, nnf, config, offset, rows, cols):
        return prepared[rows, cols]


def smooth(burst: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of every frame of float32 [M, H, W, C] (mirror borders)."""
    radius = max(1, int(round(3 * sigma)))
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    out = burst
    for axis in (1, 2):
        padding = [(0, 0)] * 4
        padding[axis] = (radius, radius)
        padded = np.pad(out, padding, mode="reflect")
        length = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(i, i + length), axis=axis)
                  for i, w in enumerate(weights))
    return out.astype(np.float32)


class GuidedPatchCraft(PatchCraft):
    """Patch-craft targets whose matches are found on a smoothed copy of the burst (the guide)
    and crafted from the noisy burst.

    Matching the noisy center frame picks, among similar patches, those whose noise resembles
    the input's: the target's noise then correlates with the input's, which makes a loss
    against such targets favour models that keep noise. Matching on the smoothed burst
    compares mostly the scene, so the crafted target's noise is close to independent of the
    input's: what an unbiased clean-free validation loss needs.
    """

    sigma = 1.5

    def match(self, burst, center, config, extended=None):
        return super().match(smooth(burst, self.sigma), center, config)


class Ring:
    """Validation targets whose every pixel is matched by the ring around it.

    Each pixel of the center frame is replaced by the pixel of another frame whose
    surroundings (the ``validation_patch_size`` square less the ``validation_hole`` square
    centred on the pixel) are nearest (:func:`pcst_prep.matching.ring_match`). The pixel copied
    never enters the distance, so where the hole spans the noise's correlation length, the
    target's noise at a pixel is close to independent of the input's noise there: the cross
    term between a model's error and the target's noise, which makes patch-craft validation
    targets favour models that keep noise, goes, and small windows (small content error)
    become usable. One target per frame (no offsets). For validation only."""

    def offsets(self, config):
        return np.zeros((1, 2), np.int64)

    def match(self, burst, center, config, extended=None):
        from .matching import ring_match

        return ring_match(burst, center, config.patch_size, config.validation_hole,
                          config.search_radius)

    def match_regions(self, burst, center, config, regions) -> np.ndarray:
        """int16 [H, W, 3]: the matches of the pixels of ``regions`` ((rows, cols) slices),
        zero elsewhere; the work is that of the regions, whatever the frame's size."""
        from .matching import ring_match

        nnf = np.zeros(np.shape(burst)[1:3] + (3,), np.int16)
        for rows, cols in regions:
            nnf[rows, cols] = ring_match(burst, center, config.patch_size,
                                         config.validation_hole, config.search_radius, rows, cols)
        return nnf

    def score(self, burst, center, config):
        raise NotImplementedError("ring targets are for validation, not training")

    def prepare(self, burst, center, config):
        return np.asarray(burst, dtype=np.float32)

    def craft(self, prepared, nnf, config, offset, rows, cols):
        return ring_region(prepared, nnf, rows, cols)


TARGET_KINDS: dict[str, TargetKind] = {"patch-craft": PatchCraft(), "neighbour": Neighbour(),
                                       "guided": GuidedPatchCraft(), "ring": Ring()}


def target_kind(name: str) -> TargetKind:
    if name not in TARGET_KINDS:
        raise InputError(f"targets must be one of {', '.join(TARGET_KINDS)}, got {name!r}")
    return TARGET_KINDS[name]
