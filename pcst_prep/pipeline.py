"""The dataset build: sequences -> bursts -> scored (tile, offset) pairs -> filter -> samples.

Three stages, run with Dask:

1. per burst, in parallel: read, add synthetic noise if asked (seeded per burst), match,
   score every (tile, offset) pair; the nnf and the scores land in the store at once;
2. on the driver: choose s_min and the r_mean window from the histogram of every scored pair
   (Dask reductions over the stored scores, so they need not fit in memory), and choose, per
   tile, up to K kept targets;
3. per chunk of samples, in parallel: craft the chosen targets from the stored nnf and write
   that chunk.

Every stage skips work whose completion flag is set, so an interrupted build started again
with the same command continues where it stopped and ends with the same store.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bursts import Sequence, SequenceInfo, cut_bursts, find_sequences, probe_sequence, read_frames
from .config import BuildConfig
from .errors import InputError
from .noise import burst_rng, get_noise_model
from .statistics import TileFilter, choose_filter, tile_origins
from . import store as zstore


@dataclass(frozen=True)
class BurstRecord:
    """One burst of the build, as tasks need it (plain data: it travels to workers)."""

    index: int
    source: int
    sequence: Sequence
    frames: tuple[int, ...]
    center: int
    height: int
    width: int


@dataclass
class BuildSummary:
    store: str
    bursts: int
    scored_pairs: int
    kept_pairs: int
    samples: int
    s_min: float
    seconds: float
    resumed: bool
    skipped_sequences: list


# --- planning ---------------------------------------------------------------------------


def plan_bursts(input_dir, config: BuildConfig, skip_bad: bool = False):
    """Sequences, their sizes and the bursts of a build; checks every input before any work.

    Returns
    -------
    (records, sources, channels, skipped) where skipped lists "path: problem" strings.
    """
    input_dir = Path(input_dir)
    sequences = find_sequences(input_dir)
    records, sources, skipped, channels = [], [], [], None
    min_side = max(config.patch_size, config.tile_size)
    for sequence in sequences:
        try:
            info = probe_sequence(sequence)
            _check_sequence(sequence, info, config, min_side, channels)
        except InputError as exc:
            if not skip_bad:
                raise
            skipped.append(str(exc))
            continue
        channels = info.channels
        source = len(sources)
        sources.append({
            "path": str(sequence.path.relative_to(input_dir)) if sequence.path != input_dir
            else ".",
            "n_frames": info.n_frames, "height": info.height, "width": info.width,
            "channels": info.channels,
        })
        for burst in cut_bursts(info.n_frames, config.burst_length, config.frame_step,
                                config.burst_stride, config.replicate):
            records.append(BurstRecord(len(records), source, sequence, burst.frame_indices,
                                       burst.center, info.height, info.width))
    if not records:
        raise InputError("no usable sequence" + (f" ({len(skipped)} skipped)" if skipped else ""),
                         input_dir)
    return records, sources, channels, skipped


def _check_sequence(sequence: Sequence, info: SequenceInfo, config: BuildConfig, min_side: int,
                    channels):
    if info.n_frames < config.burst_span:
        raise InputError(
            f"has {info.n_frames} frames, fewer than one burst needs ({config.burst_span}: "
            f"burst_length {config.burst_length}, frame_step {config.frame_step})", sequence.path)
    if min(info.height, info.width) < min_side:
        raise InputError(
            f"frames are {info.height}x{info.width}, smaller than the patch or tile "
            f"({min_side}x{min_side})", sequence.path)
    if channels is not None and info.channels != channels:
        raise InputError(f"has {info.channels} channel(s) but earlier sequences have {channels}",
                         sequence.path)


def _n_tiles(record: BurstRecord, config: BuildConfig) -> tuple[int, int]:
    return (len(tile_origins(record.height, config.tile_size, config.tile_stride)),
            len(tile_origins(record.width, config.tile_size, config.tile_stride)))


# --- tasks (module-level functions: they run in worker processes) -------------------------


def _set_numba_threads(n_threads: int | None):
    if n_threads:
        import numba

        numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))


def load_burst(record: BurstRecord, config: BuildConfig):
    """(noisy, clean) float32 [M, H, W, C] of a burst; clean is None without synthetic noise.

    The noise is seeded by (seed, burst index), so it is the same in every stage and whatever
    worker computes it."""
    frames = read_frames(record.sequence, record.frames)
    model = get_noise_model(config.noise, **config.noise_params)
    if model is None:
        return frames, None
    return model(frames, burst_rng(config.seed, record.index)), frames


def neighbour_frame(record: BurstRecord) -> int:
    """Index in the burst of the naive target frame: the next one (the previous for the last)."""
    return record.center + 1 if record.center + 1 < len(record.frames) else record.center - 1


def score_burst(store_path: str, record: BurstRecord, config: BuildConfig,
                n_threads: int | None = None) -> int:
    """Stage 1 for one burst: nnf and the scores of every (offset, tile) pair."""
    import zarr

    from .matching import extend_frames, search_patches
    from .statistics import offset_tile_stats, tile_stats
    from .targets import all_offsets

    _set_numba_threads(n_threads)
    group = zarr.open_group(store_path, mode="r+")
    noisy = load_burst(record, config)[0]  # the clean frames are not kept: 1 burst less memory
    center = record.center
    if config.targets == "neighbour":
        s_yr, r_mean = tile_stats(noisy[center], noisy[neighbour_frame(record)],
                                  config.tile_size, config.tile_stride)
        s_yr, r_mean, nnf = s_yr[None], r_mean[None], None
    else:
        nnf, _ = search_patches(noisy, center, config.patch_size, config.search_radius,
                                search=config.search, large_radius=config.large_radius,
                                grid_step=config.grid_step)
        s_yr, r_mean = offset_tile_stats(extend_frames(noisy, config.patch_size), center, nnf,
                                         config.patch_size, all_offsets(config.patch_size),
                                         config.tile_size, config.tile_stride)
    zstore.write_burst_scores(group, record.index, s_yr, r_mean, nnf)
    return s_yr.size


# The burst that stage 3 loaded last in this process, with its key: consecutive chunks mostly
# come from the same burst (samples are stored burst by burst), and reading and noising it again
# for each chunk took most of stage 3 (0.2 to 0.3 s per load at 360 x 640, ~20 loads for a
# 4-burst build instead of 4). One burst at a time: bounded memory.
_last_burst: dict = {}


def _stage3_burst(record: BurstRecord, config: BuildConfig):
    """(noisy, clean, extended noisy or None) of a burst, reusing the last one loaded."""
    sequence = record.sequence
    files = [sequence.frames[i] for i in record.frames] if sequence.frames else [sequence.path]
    key = (record.index, sequence.path, tuple(record.frames),
           json.dumps(config.build_defining(), sort_keys=True),
           # a worker outlives a build: files replaced since are read again
           tuple((s.st_mtime_ns, s.st_size) for s in map(os.stat, files)))
    if _last_burst.get("key") != key:
        _last_burst.clear()  # free the previous burst before loading the next
        from .matching import extend_frames

        noisy, clean = load_burst(record, config)
        extended = None if config.targets == "neighbour" else extend_frames(noisy,
                                                                            config.patch_size)
        _last_burst.update(key=key, value=(noisy, clean, extended))
    return _last_burst["value"]


def materialise_chunk(store_path: str, chunk: int, records: list, config: BuildConfig,
                      n_threads: int | None = None) -> int:
    """Stage 3 for one chunk of samples: crop input tiles, craft their chosen targets."""
    import zarr

    from .targets import craft_region

    _set_numba_threads(n_threads)
    group = zarr.open_group(store_path, mode="r+")
    start = chunk * zstore.SAMPLE_CHUNK
    stop = min(start + zstore.SAMPLE_CHUNK, zstore.n_samples(group))
    table = zstore.read_samples_table(group, start, stop)
    bursts, positions, offsets, valid = (table[k] for k in ("burst", "position", "offsets",
                                                             "valid"))
    tile, k = config.tile_size, config.targets_per_tile
    channels = zstore.channels(group)
    inputs = np.zeros((stop - start, tile, tile, channels), np.float32)
    targets = np.full((stop - start, k, tile, tile, channels), np.nan, np.float32)
    clean_tiles = np.zeros_like(inputs) if zstore.has_clean(group) else None
    for burst_index in np.unique(bursts):
        record = records[burst_index]
        noisy, clean, extended = _stage3_burst(record, config)
        if config.targets == "neighbour":
            neighbour = noisy[neighbour_frame(record)]
        else:
            nnf = zstore.read_nnf(group, burst_index)
        for i in np.nonzero(bursts == burst_index)[0]:
            rows = slice(positions[i, 0], positions[i, 0] + tile)
            cols = slice(positions[i, 1], positions[i, 1] + tile)
            inputs[i] = noisy[record.center, rows, cols]
            if clean_tiles is not None:
                clean_tiles[i] = clean[record.center, rows, cols]
            for j in np.nonzero(valid[i])[0]:
                if config.targets == "neighbour":
                    targets[i, j] = neighbour[rows, cols]
                else:
                    targets[i, j] = craft_region(extended, nnf, config.patch_size,
                                                 tuple(offsets[i, j]), rows, cols)
    zstore.write_sample_chunk(group, chunk, inputs, targets, clean_tiles)
    return stop - start


# --- stage 2: the filter --------------------------------------------------------------------


def compute_filter(group, config: BuildConfig) -> TileFilter:
    """The tile filter from every scored pair, out of core with Dask."""
    import dask.array as da

    s_yr, r_mean = (da.from_zarr(a) for a in zstore.score_arrays(group))
    return choose_filter(s_yr, r_mean, config.bins, config.mean_std, apply=config.filter)


def choose_samples(group, records, config: BuildConfig, tile_filter: TileFilter) -> dict:
    """Per tile with at least one kept target, up to K of its kept offsets, drawn at random
    (seeded per burst). Returns the small per-sample tables."""
    from .targets import all_offsets

    offsets = (all_offsets(config.patch_size) if config.targets == "patch-craft"
               else np.zeros((1, 2), np.int16))
    k = config.targets_per_tile
    table = {"burst": [], "position": [], "offsets": [], "valid": [], "s_yr": []}
    for record in records:
        n_i, n_j = _n_tiles(record, config)
        s_yr, r_mean = zstore.read_burst_scores(group, record.index, n_i * n_j)
        keep = tile_filter.keeps(s_yr, r_mean)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, record.index]))
        rows = tile_origins(record.height, config.tile_size, config.tile_stride)
        cols = tile_origins(record.width, config.tile_size, config.tile_stride)
        for tile in range(n_i * n_j):
            candidates = np.nonzero(keep[:, tile])[0]
            if candidates.size == 0:
                continue
            chosen = np.sort(rng.choice(candidates, size=min(k, candidates.size), replace=False))
            row_offsets = np.zeros((k, 2), np.int16)
            row_offsets[:chosen.size] = offsets[chosen]
            row_s = np.full(k, np.nan, np.float32)
            row_s[:chosen.size] = s_yr[chosen, tile]
            table["burst"].append(record.index)
            table["position"].append((rows[tile // n_j], cols[tile % n_j]))
            table["offsets"].append(row_offsets)
            table["valid"].append(np.arange(k) < chosen.size)
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


# --- running tasks --------------------------------------------------------------------------


class _Runner:
    """Runs task lists on the synchronous scheduler (1 worker), a local cluster of processes,
    or an existing dask.distributed cluster; shows progress either way.

    An external scheduler is connected at once (a bad address fails before anything is
    written); a local cluster starts only when there is work for it."""

    def __init__(self, workers: int = 1, scheduler: str | None = None, progress: bool = True):
        self.client = self.cluster = None
        self.workers, self.progress, self.n_threads = workers, progress, None
        if scheduler:
            from distributed import Client

            try:
                self.client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
            # Numba threads per task: the host's cores shared among its Dask threads.
            info = self.client.scheduler_info(n_workers=-1)["workers"].values()
            threads = sum(w["nthreads"] for w in info) or 1
            hosts = len({w["host"] for w in info}) or 1
            self.n_threads = max(1, (os.cpu_count() or 1) * hosts // threads)

    def _start_local_cluster(self):
        from distributed import Client, LocalCluster

        self.n_threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None,
                                    env={"NUMBA_NUM_THREADS": str(self.n_threads)})
        self.client = Client(self.cluster)

    def run(self, function, items, desc: str, *args) -> list:
        from tqdm.auto import tqdm

        if not items:
            return []
        if self.client is None and self.workers > 1:
            self._start_local_cluster()
        on_terminal = self.progress and sys.stderr.isatty()
        bar = tqdm(total=len(items), desc=desc, unit="burst" if desc.startswith("1") else "chunk",
                   disable=not on_terminal, file=sys.stderr, leave=False)
        results = []
        start = time.perf_counter()
        try:
            if self.client is None:
                for item in items:
                    results.append(function(*args[:1], item, *args[1:], self.n_threads))
                    bar.update()
            else:
                from distributed import as_completed

                futures = [self.client.submit(function, *args[:1], item, *args[1:],
                                              self.n_threads, pure=False) for item in items]
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update()
        finally:
            bar.close()
        if not on_terminal:
            print(f"{desc}: {len(items)} tasks in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
        return results

    def close(self):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# --- the build ------------------------------------------------------------------------------


def build(input_dir, store_path, config: BuildConfig, *, workers: int = 1,
          scheduler: str | None = None, overwrite: bool = False, skip_bad: bool = False,
          progress: bool = True) -> BuildSummary:
    """Build (or resume building) a filtered training store from a directory of sequences.

    Parameters
    ----------
    input_dir : path
        Video files and frame folders (see data/README.md).
    store_path : path or URL
        The Zarr store to write: a directory, or an fsspec URL (``s3://bucket/run.zarr``).
    config : BuildConfig
    workers : int
        1: run in this process, Numba using every core. N > 1: a local cluster of N worker
        processes, each with cores / N Numba threads.
    scheduler : str, optional
        Address of an existing dask.distributed scheduler (``tcp://host:port``); the store
        must then be reachable from every worker (a shared path, or an object store URL).
    overwrite : bool
        Replace an existing store built with other settings.
    skip_bad : bool
        Skip unusable sequences with a warning instead of stopping.
    progress : bool
        Progress bars on a terminal.
    """
    started = time.perf_counter()
    input_dir, store_path = Path(input_dir).resolve(), zstore.location(store_path)
    records, sources, channels, skipped = plan_bursts(input_dir, config, skip_bad)
    for problem in skipped:
        warnings.warn(f"skipped {problem}", stacklevel=2)
    max_tiles = max(np.prod(_n_tiles(r, config)) for r in records)
    fingerprint = {
        "parameters": config.build_defining(),
        "input_dir": str(input_dir),
        "sources": sources,
        "bursts": [[r.source, list(r.frames), r.center] for r in records],
    }
    layout = {"n_bursts": len(records), "n_offsets": config.n_offsets,
              "max_tiles": int(max_tiles), "channels": channels}
    runner = _Runner(workers, scheduler, progress)  # connect first: a bad address writes nothing
    try:
        group, resumed = zstore.prepare(store_path, fingerprint, layout, overwrite)
        zstore.describe(group, config.to_dict(), str(input_dir), sources, channels)
        if not resumed:
            zstore.write_burst_table(group, [r.source for r in records],
                                     [list(r.frames) for r in records],
                                     [r.center for r in records],
                                     [_n_tiles(r, config) for r in records])

        path = str(store_path)
        scored = zstore.scored_bursts(group)
        todo = [r for r in records if not scored[r.index]]
        runner.run(score_burst, todo, "1/3 match and score bursts", path, config)

        tile_filter = zstore.read_filter(group)
        if tile_filter is None:
            tile_filter = compute_filter(group, config)
            table = choose_samples(group, records, config, tile_filter)
            zstore.write_samples_table(group, table, tile_filter)
        print(f"2/3 filter: s_min {tile_filter.s_min:.4g}, kept {tile_filter.kept_pairs:,} of "
              f"{tile_filter.scored_pairs:,} (tile, offset) pairs", file=sys.stderr)
        n_samples = zstore.n_samples(group)
        n_chunks = zstore.create_sample_arrays(group, n_samples, config.targets_per_tile,
                                               config.tile_size, channels,
                                               with_clean=config.noise != "none")
        done = zstore.materialised_chunks(group)
        chunks = [c for c in range(n_chunks) if not done[c]]
        runner.run(materialise_chunk, chunks, "3/3 craft targets", path, records, config)
    finally:
        runner.close()
        _last_burst.clear()

    counts = {"bursts": len(records), "scored_pairs": tile_filter.scored_pairs,
              "kept_pairs": tile_filter.kept_pairs, "samples": int(n_samples),
              "valid_targets": int(zstore.valid_targets(group).sum())}
    zstore.finish(group, counts, config.keep_nnf)
    return BuildSummary(str(store_path), len(records), counts["scored_pairs"],
                        counts["kept_pairs"], counts["samples"], tile_filter.s_min,
                        time.perf_counter() - started, resumed, skipped)
