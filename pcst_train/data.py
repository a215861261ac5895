"""Streaming a pcst store into PyTorch.

The store is read through :mod:`pcst_prep.store`, the module that owns its schema (it imports
neither numba nor dask).

A format-2 store holds each frame once, each burst's nnf and the table of kept (tile, offset)
pairs: the input and target tiles are crafted here while streaming (NumPy only, with the
build's own functions in :mod:`pcst_prep.craft`, so a tile is the one a format-1 build would
store, to the bit). A format-1 store holds the tiles and K targets themselves.

Shuffling works at two levels, so reads stay whole: the order of the bursts (format 2) or
sample chunks (format 1) is shuffled every epoch, and tiles are shuffled within a buffer of
several bursts or chunks. Each time a tile is seen one of its kept offsets (format 2: any of
them, as the paper does; format 1: one of the K stored targets) is drawn at random, the
store's reported target bias ``r_center`` is subtracted, and one of the 8 flips/rotations is
applied identically to input and target.

Zarr v3 runs an event-loop thread, so forked DataLoader workers can deadlock: the store is
opened lazily inside each worker, and loaders with workers use the "spawn" start method.
Workers are started once per loader, not once per epoch (a spawned worker takes seconds to
import torch and open the store, and an epoch of a small store lasts less than that): the
epoch reaches them through a shared value (:meth:`StoreDataset.set_epoch`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import types

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from pcst_prep import store as zstore
from pcst_prep.craft import craft_region, extend_frames
from pcst_prep.errors import InputError


def open_training_store(path):
    """Open a finished pcst store (a directory, or an fsspec URL such as s3://bucket/run.zarr)
    for reading, refusing anything else with a clear message."""
    return zstore.open_store(path, complete=True)


def augment(arrays: list[np.ndarray], mode: int) -> list[np.ndarray]:
    """One of the 8 dihedral transforms (mode 0..7) applied to [..., H, W] arrays alike."""
    out = []
    for a in arrays:
        a = np.rot90(a, k=mode % 4, axes=(-2, -1))
        if mode >= 4:
            a = a[..., ::-1, :]
        out.append(np.ascontiguousarray(a))
    return out


@dataclasses.dataclass
class WorkerFailure:
    """An :class:`InputError` of a DataLoader worker (a damaged chunk, say), carried to the
    main process as a batch: torch would re-raise it with the worker's traceback folded into
    its message. :func:`batches_of` raises it there as it was."""

    message: str


def _collate(batch):
    failure = next((item for item in batch if isinstance(item, WorkerFailure)), None)
    return failure if failure is not None else default_collate(batch)


def batches_of(loader: DataLoader):
    """Iterate a loader made by :func:`make_loader`, raising a worker's InputError as is."""
    for batch in loader:
        if isinstance(batch, WorkerFailure):
            raise InputError(batch.message)
        yield batch


class BurstTiles:
    """One burst of a format-2 store, loaded to craft its training tiles: the noisy frames
    (extended as the build extends them), the nnf, the tile table's rows, and the clean center
    frame when asked for (stores with synthetic noise)."""

    def __init__(self, group, table: dict, burst: int, clean: bool = False,
                 shared: dict | None = None):
        source, frames = int(table["source"][burst]), table["frames"][burst]
        self.patch_size = int(zstore.parameters(group)["patch_size"])
        self.size = zstore.tile_size(group)
        self.center = int(table["center"][burst])
        key = (source, tuple(int(f) for f in frames))  # bursts of one span share their frames
        if shared is None or key not in shared:
            noisy = zstore.read_frames(group, source, frames, noisy=True)
            extended = extend_frames(noisy, self.patch_size)
            if shared is not None:
                shared[key] = extended
        else:
            extended = shared[key]
        pad = self.patch_size - 1
        self.extended = extended
        self.input_frame = extended[self.center, pad:extended.shape[1] - pad,
                                    pad:extended.shape[2] - pad]
        self.nnf = zstore.read_nnf(group, burst)
        start, stop = int(table["tiles"][burst]), int(table["tiles"][burst + 1])
        self.rows = np.arange(start, stop)
        tiles = zstore.read_tiles(group, burst)
        self.position, self.kept = tiles["position"], tiles["kept"]
        self.clean_frame = (zstore.read_frames(group, source, [frames[self.center]], noisy=False)[0]
                            if clean else None)

    def _region(self, row: int):
        top, left = self.position[row - self.rows[0]]
        return slice(top, top + self.size), slice(left, left + self.size)

    def input(self, row: int) -> np.ndarray:
        """float32 [S, S, C]: the noisy input tile of table row ``row``."""
        return self.input_frame[self._region(row)]

    def clean(self, row: int) -> np.ndarray:
        return self.clean_frame[self._region(row)]

    def offsets(self, row: int) -> np.ndarray:
        """int [n, 2]: the kept offsets (k, l) of the tile."""
        return np.stack(np.divmod(np.nonzero(self.kept[row - self.rows[0]])[0],
                                  self.patch_size), axis=1)

    def target(self, row: int, offset) -> np.ndarray:
        """float32 [S, S, C]: the patch-craft target of the tile at ``offset`` (k, l)."""
        return craft_region(self.extended, self.nnf, self.patch_size, tuple(int(o) for o in offset),
                            *self._region(row))


class StoreDataset(IterableDataset):
    """(input, target) float32 pairs [C, S, S] streamed from a store.

    Parameters
    ----------
    path : store path
    seed : int
        With the epoch (see :meth:`set_epoch`), fixes every random choice.
    buffer_chunks : int
        Bursts (format 2) or sample chunks (format 1) whose tiles are shuffled together.
    augment : bool
        Random flips and rotations.
    clean_targets : bool
        Use the store's clean tiles as targets (the supervised N2C baseline; stores with
        synthetic noise only).
    indices : array of int, optional
        Restrict to these samples (for instance to hold some out).
    """

    def __init__(self, path, seed: int = 0, buffer_chunks: int = 4, augment: bool = True,
                 clean_targets: bool = False, indices=None):
        super().__init__()
        self.path = str(path)
        group = open_training_store(path)  # fail early, in the main process
        self.n_samples = zstore.n_samples(group)
        self.format = zstore.format_version(group)
        self.chunk = zstore.sample_chunk(group) if self.format == 1 else None
        self.r_center = zstore.read_filter(group).r_center
        if clean_targets and not zstore.has_clean(group):
            raise InputError("store has no clean tiles (its noise was not synthetic)", path)
        self.seed, self.buffer_chunks, self.augment = seed, buffer_chunks, augment
        self.clean_targets = clean_targets
        self.indices = None if indices is None else np.sort(np.asarray(indices))
        self._epoch = types.SimpleNamespace(value=0)  # a shared Value after share_epoch
        self._group = None

    def __len__(self):
        return self.n_samples if self.indices is None else len(self.indices)

    @property
    def epoch(self) -> int:
        return self._epoch.value

    def set_epoch(self, epoch: int):
        """The epoch whose pairs the next iteration yields, also in workers started before
        (after :meth:`share_epoch`)."""
        self._epoch.value = int(epoch)

    def share_epoch(self, context: multiprocessing.context.BaseContext):
        """Keep the epoch in shared memory of ``context``, so that persistent DataLoader
        workers (which hold copies of this dataset made when they started) see
        :meth:`set_epoch`. The dataset can then be pickled only to start such a worker."""
        if isinstance(self._epoch, types.SimpleNamespace):
            self._epoch = context.Value("q", self._epoch.value, lock=False)

    def _chunks(self) -> list[np.ndarray]:
        """Sample indices grouped by store chunk."""
        everything = np.arange(self.n_samples) if self.indices is None else self.indices
        bounds = np.searchsorted(everything, np.arange(0, self.n_samples + self.chunk, self.chunk))
        return [everything[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def __iter__(self):
        try:
            yield from self._pairs()
        except InputError as exc:
            if get_worker_info() is None:
                raise
            yield WorkerFailure(str(exc))

    def _pair(self, x: np.ndarray, y: np.ndarray, rng):
        x, y = x.transpose(2, 0, 1), y.transpose(2, 0, 1)
        if self.augment:
            x, y = augment([x, y], int(rng.integers(8)))
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    def _pairs(self):
        if self._group is None:
            self._group = zstore.open_store(self.path)  # inside the worker
        group = self._group
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, worker]))
        if self.format == 2:
            yield from self._crafted_pairs(group, worker, n_workers, rng)
            return
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self._chunks()))
        chunks = [self._chunks()[i] for i in order][worker::n_workers]
        for start in range(0, len(chunks), self.buffer_chunks):
            pieces = []
            for samples in chunks[start:start + self.buffer_chunks]:
                lo, hi = samples[0], samples[-1] + 1
                inputs, targets, valid = zstore.read_samples(group, lo, hi, self.clean_targets)
                keep = samples - lo
                pieces.append((inputs[keep], targets[keep], valid[keep]))
            inputs = np.concatenate([p[0] for p in pieces])
            targets = np.concatenate([p[1] for p in pieces])
            valid = np.concatenate([p[2] for p in pieces])
            for i in rng.permutation(len(inputs)):
                j = rng.choice(np.nonzero(valid[i])[0])
                target = targets[i, j] if self.clean_targets else targets[i, j] - self.r_center
                yield self._pair(inputs[i], target, rng)

    def _crafted_pairs(self, group, worker: int, n_workers: int, rng):
        """Format 2: bursts in a shuffled order, each worker its share, tiles shuffled within
        ``buffer_chunks`` bursts, each with one of its kept offsets drawn at random."""
        table = zstore.burst_table(group)
        starts = table["tiles"]
        everything = np.arange(self.n_samples) if self.indices is None else self.indices
        bounds = np.searchsorted(everything, starts)
        bursts = [b for b in range(len(starts) - 1) if bounds[b + 1] > bounds[b]]
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(bursts))
        mine = [bursts[i] for i in order][worker::n_workers]
        shared = {}
        for start in range(0, len(mine), self.buffer_chunks):
            kept, shared = shared, {}
            loaded = {}
            for b in mine[start:start + self.buffer_chunks]:
                key = (int(table["source"][b]), tuple(int(f) for f in table["frames"][b]))
                if key in kept:  # still loaded from the last buffer
                    shared[key] = kept[key]
                loaded[b] = BurstTiles(group, table, b, clean=self.clean_targets, shared=shared)
            rows = np.concatenate([everything[bounds[b]:bounds[b + 1]] for b in loaded])
            owner = np.repeat(list(loaded), [bounds[b + 1] - bounds[b] for b in loaded])
            for i in rng.permutation(len(rows)):
                tiles, row = loaded[int(owner[i])], int(rows[i])
                if self.clean_targets:
                    target = tiles.clean(row)
                else:
                    kept = tiles.offsets(row)
                    target = tiles.target(row, kept[rng.integers(len(kept))]) - self.r_center
                yield self._pair(tiles.input(row), target, rng)


def make_loader(dataset: StoreDataset, batch_size: int, workers: int = 0) -> DataLoader:
    """A DataLoader over the dataset; workers start with "spawn", once for the loader's life
    (see the module docstring)."""
    kwargs = {}
    if workers > 0:
        context = multiprocessing.get_context("spawn")
        dataset.share_epoch(context)
        kwargs = {"multiprocessing_context": context, "persistent_workers": True}
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                      **kwargs)


def _crafted_clean_pairs(group, rows) -> tuple[np.ndarray, np.ndarray]:
    """Format 2: (noisy, clean) input tiles [n, S, S, C] of the given tile table rows."""
    table, size = zstore.burst_table(group), zstore.tile_size(group)
    rows = np.asarray(rows)
    bursts = np.searchsorted(table["tiles"], rows, side="right") - 1
    positions = {}
    noisy, clean = [], []
    for i, row in enumerate(rows):
        burst = int(bursts[i])
        if burst not in positions:
            source, frames = int(table["source"][burst]), table["frames"][burst]
            center = [frames[int(table["center"][burst])]]
            positions[burst] = (zstore.read_frames(group, source, center, noisy=True)[0],
                                zstore.read_frames(group, source, center, noisy=False)[0],
                                zstore.read_tiles(group, burst)["position"],
                                int(table["tiles"][burst]))
        frame, clean_frame, position, start = positions[burst]
        top, left = position[row - start]
        noisy.append(frame[top:top + size, left:left + size])
        clean.append(clean_frame[top:top + size, left:left + size])
    return np.stack(noisy), np.stack(clean)


def clean_pairs(path, limit: int = 64, indices=None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(noisy, clean) input tiles [n, C, S, S] for validation, or None without clean tiles."""
    group = open_training_store(path)
    if not zstore.has_clean(group):
        return None
    n = zstore.n_samples(group)
    chosen = np.linspace(0, n - 1, min(limit, n)).astype(int) if indices is None else indices
    if zstore.format_version(group) == 1:
        noisy, clean = zstore.read_clean_pairs(group, chosen)
    else:
        noisy, clean = _crafted_clean_pairs(group, chosen)
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    return to(noisy), to(clean)


def held_out_clean_pairs(path, limit: int | None = None):
    """(noisy, clean) held-out validation tiles [n, C, S, S], or None without them."""
    validation = zstore.read_validation(open_training_store(path))
    if validation is None or validation[2] is None:
        return None
    noisy, _, clean = validation
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a[:limit].transpose(0, 3, 1, 2)))  # noqa: E731
    return to(noisy), to(clean)
