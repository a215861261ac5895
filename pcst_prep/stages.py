"""The three stages of a build, as tasks that run anywhere (module-level functions: they travel
to worker processes) and read and write the store only through :mod:`pcst_prep.store`.

1. per burst: read, add synthetic noise if asked (seeded per frame), score every candidate
   target of every tile (:mod:`pcst_prep.targets`); the scores (and the nnf) land in the store;
2. choose the tile filter from every scored pair (out of core), then the training tiles:
   format 2, per burst in parallel, every tile with a kept offset and which offsets are kept;
   format 1, on the driver, per tile up to K kept targets;
3. format 2, per group of frames: store the frames a burst uses, once (the trainer crafts the
   tiles from them and the nnf); format 1, per chunk of samples: crop the input tiles and
   craft their chosen targets.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

import numpy as np

from . import store as zstore
from .bursts import Burst, Sequence, as_float, read_frames
from .config import BuildConfig
from .errors import InputError
from .noise import add_frame_noise, get_noise_model
from .plan import tile_grid
from .statistics import TileFilter, choose_filter, tile_origins
from .targets import target_kind


def _set_numba_threads(n_threads: int | None):
    if n_threads:
        import numba

        numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))


def load_burst(burst: Burst, config: BuildConfig):
    """(noisy, clean) float32 [M, H, W, C] of a burst; clean is None without synthetic noise.

    The noise is seeded per frame (seed, sequence, frame index), so a frame has the same noise
    in every burst that uses it, in every stage and whatever worker computes it."""
    frames = burst.read()
    model = get_noise_model(config.noise, **config.noise_params)
    if model is None:
        return frames, None
    return add_frame_noise(model, frames, config.seed, burst.source, burst.frame_indices), frames


# --- stage 1 ---------------------------------------------------------------------------------


def score_burst(store_path: str, config: BuildConfig, burst: Burst,
                n_threads: int | None = None) -> int:
    """Stage 1 for one burst: the scores of every (target, tile) pair, and the nnf."""
    _set_numba_threads(n_threads)
    group = zstore.open_store(store_path, mode="r+")
    noisy = load_burst(burst, config)[0]  # the clean frames are not kept: 1 burst less memory
    s_yr, r_mean, nnf = target_kind(config.targets).score(noisy, burst.center, config)
    zstore.write_burst_scores(group, burst.index, s_yr, r_mean, nnf)
    return s_yr.size


# --- stage 2 ---------------------------------------------------------------------------------


def compute_filter(group, config: BuildConfig) -> TileFilter:
    """The tile filter from every scored pair, out of core with Dask."""
    import dask.array as da

    s_yr, r_mean = (da.from_zarr(a) for a in zstore.score_arrays(group))
    with zstore.reading(group, "stats/s_yr", "stats/r_mean"):
        return choose_filter(s_yr, r_mean, config.bins, config.mean_std, apply=config.filter)


def choose_samples(group, bursts: list[Burst], config: BuildConfig,
                   tile_filter: TileFilter) -> dict:
    """Per tile with at least one kept target, up to K of its kept offsets, drawn at random
    (seeded per burst). Returns the per-sample tables of :func:`store.write_samples_table`."""
    offsets = target_kind(config.targets).offsets(config)
    n_targets = config.targets_per_tile
    table = {"burst": [], "position": [], "offsets": [], "valid": [], "s_yr": []}
    for burst in bursts:
        n_i, n_j = tile_grid(burst, config)
        s_yr, r_mean = zstore.read_burst_scores(group, burst.index, n_i * n_j)
        keep = tile_filter.keeps(s_yr, r_mean)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, burst.index]))
        rows = tile_origins(burst.height, config.tile_size, config.tile_stride)
        cols = tile_origins(burst.width, config.tile_size, config.tile_stride)
        for tile in range(n_i * n_j):
            candidates = np.nonzero(keep[:, tile])[0]
            if candidates.size == 0:
                continue
            chosen = np.sort(rng.choice(candidates, size=min(n_targets, candidates.size),
                                        replace=False))
            row_offsets = np.zeros((n_targets, 2), np.int16)
            row_offsets[:chosen.size] = offsets[chosen]
            row_s = np.full(n_targets, np.nan, np.float32)
            row_s[:chosen.size] = s_yr[chosen, tile]
            table["burst"].append(burst.index)
            table["position"].append((rows[tile // n_j], cols[tile % n_j]))
            table["offsets"].append(row_offsets)
            table["valid"].append(np.arange(n_targets) < chosen.size)
            table["s_yr"].append(row_s)
    if not table["burst"]:
        raise InputError("the filter kept no training tile; check the input and parameters")
    return {
        "burst": np.asarray(table["burst"], np.int32),
        "position": np.asarray(table["position"], np.int32),
        "offsets": np.asarray(table["offsets"], np.int16),
        "valid": np.asarray(table["valid"], bool),
        "s_yr": np.asarray(table["s_yr"], np.float32),
    }


def kept_tiles(group, burst: Burst, config: BuildConfig, tile_filter: TileFilter):
    """Format 2: (position int32 [n, 2], kept bool [n, P2]) of a burst's tiles that keep at
    least one offset, row-major."""
    n_i, n_j = tile_grid(burst, config)
    s_yr, r_mean = zstore.read_burst_scores(group, burst.index, n_i * n_j)
    keep = tile_filter.keeps(s_yr, r_mean)
    tiles = np.nonzero(keep.any(axis=0))[0]
    rows = tile_origins(burst.height, config.tile_size, config.tile_stride)
    cols = tile_origins(burst.width, config.tile_size, config.tile_stride)
    position = np.stack([rows[tiles // n_j], cols[tiles % n_j]], axis=1).astype(np.int32)
    return position, keep[:, tiles].T


def burst_tiles(store_path: str, config: BuildConfig, tile_filter: TileFilter, burst: Burst,
                n_threads: int | None = None) -> tuple[int, int]:
    """Stage 2 of a format-2 store for one burst, in parallel with the others: its training
    tiles and their kept offsets. Returns (burst index, tiles)."""
    group = zstore.open_store(store_path, mode="r+")
    position, kept = kept_tiles(group, burst, config, tile_filter)
    zstore.write_burst_tiles(group, burst.index, position, kept)
    return burst.index, len(position)


# --- stage 3 ---------------------------------------------------------------------------------


FRAMES_PER_TASK = 8


def frame_jobs(bursts: list[Burst], done) -> list[tuple]:
    """Stage 3 of a format-2 store as tasks: (source, sequence, frame indices), every frame
    that a burst uses once, ``FRAMES_PER_TASK`` at a time; ``done(source)`` gives the frames
    already written."""
    used: dict[int, set] = {}
    sequences = {}
    for burst in bursts:
        used.setdefault(burst.source, set()).update(burst.frame_indices)
        sequences[burst.source] = burst.sequence
    jobs = []
    for source in sorted(used):
        written = done(source)
        todo = sorted(i for i in used[source] if not written[i])
        jobs += [(source, sequences[source], tuple(todo[i:i + FRAMES_PER_TASK]))
                 for i in range(0, len(todo), FRAMES_PER_TASK)]
    return jobs


def store_frames(store_path: str, config: BuildConfig, job: tuple,
                 n_threads: int | None = None) -> int:
    """Stage 3 of a format-2 store for one job: decode the frames, add the synthetic noise
    (the same as :func:`load_burst` adds), write both."""
    source, sequence, indices = job
    group = zstore.open_store(store_path, mode="r+")
    raw = read_frames(sequence, indices, raw=True)
    model = get_noise_model(config.noise, **config.noise_params)
    noisy = None if model is None else add_frame_noise(model, as_float(raw), config.seed,
                                                       source, indices)
    zstore.write_frames(group, source, indices, raw, noisy)
    return len(indices)


def frame_layout(sequence: Sequence, index: int) -> tuple[tuple, np.dtype]:
    """(shape [H, W, C], sample type) of a sequence's frames, from one decoded frame."""
    frame = read_frames(sequence, [index], raw=True)[0]
    return frame.shape, frame.dtype




@lru_cache(maxsize=1)
def _crafting_inputs(burst: Burst, config_json: str, file_stamps: tuple):
    """(noisy, clean, prepared) of a burst for stage 3. Consecutive chunks mostly come from the
    same burst (samples are stored burst by burst), so the last burst is kept: one burst of
    memory. ``file_stamps`` (mtimes and sizes) is in the key because a Dask worker outlives a
    build: files replaced since are read again."""
    config = BuildConfig.from_dict(json.loads(config_json))
    noisy, clean = load_burst(burst, config)
    return noisy, clean, target_kind(config.targets).prepare(noisy, burst.center, config)


def _burst_for_crafting(burst: Burst, config: BuildConfig):
    stamps = tuple((s.st_mtime_ns, s.st_size)
                   for s in map(os.stat, burst.sequence.files(burst.frame_indices)))
    return _crafting_inputs(burst, json.dumps(config.to_dict(), sort_keys=True), stamps)


def materialise_chunk(store_path: str, config: BuildConfig, bursts: list[Burst], chunk: int,
                      n_threads: int | None = None) -> int:
    """Stage 3 for one chunk of samples: crop input tiles, craft their chosen targets."""
    _set_numba_threads(n_threads)
    group = zstore.open_store(store_path, mode="r+")
    kind = target_kind(config.targets)
    start = chunk * zstore.SAMPLE_CHUNK
    stop = min(start + zstore.SAMPLE_CHUNK, zstore.n_samples(group))
    table = zstore.read_samples_table(group, start, stop)
    size, n_targets = config.tile_size, config.targets_per_tile
    channels = zstore.channels(group)
    inputs = np.zeros((stop - start, size, size, channels), np.float32)
    targets = np.full((stop - start, n_targets, size, size, channels), np.nan, np.float32)
    clean_tiles = np.zeros_like(inputs) if zstore.has_clean(group) else None
    for index in np.unique(table["burst"]):
        burst = bursts[index]
        noisy, clean, prepared = _burst_for_crafting(burst, config)
        nnf = zstore.read_nnf(group, index) if zstore.has_nnf(group, index) else None
        for i in np.nonzero(table["burst"] == index)[0]:
            rows = slice(table["position"][i, 0], table["position"][i, 0] + size)
            cols = slice(table["position"][i, 1], table["position"][i, 1] + size)
            inputs[i] = noisy[burst.center, rows, cols]
            if clean_tiles is not None:
                clean_tiles[i] = clean[burst.center, rows, cols]
            for j in np.nonzero(table["valid"][i])[0]:
                targets[i, j] = kind.craft(prepared, nnf, config, table["offsets"][i, j],
                                           rows, cols)
    zstore.write_sample_chunk(group, chunk, inputs, targets, clean_tiles)
    return stop - start


# --- validation ------------------------------------------------------------------------------


def validation_tiles(height: int, width: int, config: BuildConfig) -> list[tuple[int, int]]:
    """Top-left (row, col) of a held-out frame's validation tiles: its non-overlapping tiles,
    row-major, at most ``validation_tiles`` of them, evenly spread over that order."""
    size = config.tile_size
    tiles = [(int(r), int(c)) for r in tile_origins(height, size, size)
             for c in tile_origins(width, size, size)]
    if len(tiles) > config.validation_tiles:
        chosen = np.linspace(0, len(tiles) - 1, config.validation_tiles).round().astype(int)
        tiles = [tiles[i] for i in chosen]
    return tiles


def validation_burst(store_path: str, config: BuildConfig, burst: Burst,
                     n_threads: int | None = None) -> int:
    """The validation tiles of one held-out burst (:func:`validation_tiles` of its center
    frame), with ``targets_per_tile`` targets of kind ``validation_targets`` at
    ``validation_patch_size`` (offsets drawn with a seed of the burst alone; ring targets
    have one per tile, matched over the tiles only). Unfiltered, and the same whatever the
    training settings, so that runs on stores built with other settings compare."""
    _set_numba_threads(n_threads)
    group = zstore.open_store(store_path, mode="r+")
    noisy, clean = load_burst(burst, config)
    kind = target_kind(config.validation_targets)
    vconfig = config.replace(patch_size=config.validation_patch_size)
    size, n_targets = config.tile_size, config.targets_per_tile
    tiles = validation_tiles(burst.height, burst.width, config)
    regions = [(slice(row, row + size), slice(col, col + size)) for row, col in tiles]
    if hasattr(kind, "match_regions"):
        nnf = kind.match_regions(noisy, burst.center, vconfig, regions)
    else:
        nnf = kind.match(noisy, burst.center, vconfig)
    prepared = kind.prepare(noisy, burst.center, vconfig)
    offsets = kind.offsets(vconfig)
    n_targets = min(n_targets, len(offsets))  # ring targets: one per tile
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2, burst.index]))
    channels = noisy.shape[-1]
    inputs = np.empty((len(regions), size, size, channels), np.float32)
    targets = np.empty((len(inputs), n_targets, size, size, channels), np.float32)
    clean_tiles = None if clean is None else np.empty_like(inputs)
    for i, region in enumerate(regions):
        inputs[i] = noisy[burst.center][region]
        if clean_tiles is not None:
            clean_tiles[i] = clean[burst.center][region]
        for j, o in enumerate(rng.choice(len(offsets), n_targets, replace=False)):
            targets[i, j] = kind.craft(prepared, nnf, vconfig, offsets[o], *region)
    zstore.write_validation_burst(group, burst.index, inputs, targets, clean_tiles)
    return len(inputs)


def forget_cached_burst():
    """Free the burst stage 3 keeps in this process."""
    _crafting_inputs.cache_clear()
