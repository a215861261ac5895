"""The Zarr v3 store: the one contract between pcst_prep and pcst_train.

This module owns the schema: every array name, attribute, chunking, codec and the format
version (:data:`ARRAYS`, :data:`ATTRIBUTES`; ``data/README.md`` shows them and a test checks it
against this module). Both packages read and write a store only through the functions here.
It imports neither numba nor dask, so that pcst_train can use it.

Parallel writers only ever write whole chunks they own: one burst's row of the statistics, one
burst's nnf, one chunk of samples. Progress flags are arrays chunked by one element, set after
the data they vouch for is written, so that an interrupted build resumes where it stopped.

A store is a local directory or an fsspec URL (``s3://bucket/run.zarr``, ``gs://...``,
``memory://...``; credentials come from fsspec's usual configuration, and the protocol's
package, s3fs say, must be installed). ``file://`` URLs are local paths.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from . import __version__
from .errors import InputError

FORMAT = "pcst-store"
FORMAT_VERSION = 2  # what a build writes by default (``store_format`` 1 still writes version 1)
FORMAT_VERSIONS = (1, 2)  # what this module reads
SAMPLE_CHUNK = 64  # samples per chunk of the training arrays (format 1)


@dataclass(frozen=True)
class ArraySpec:
    """One array of the schema, as documented: B bursts, P2 offsets, T tiles, N samples,
    K targets per tile, S tile side, C channels, M burst length."""

    name: str
    shape: str
    chunks: str
    meaning: str
    formats: str = "1, 2"


ARRAYS = (
    ArraySpec("bursts/source", "[B] int", "whole", "sequence index (into `sources`)"),
    ArraySpec("bursts/frames", "[B, M] int", "whole",
              "frame indices of the burst within its sequence"),
    ArraySpec("bursts/center", "[B] int", "whole", "position of the input frame within `frames`"),
    ArraySpec("bursts/n_tiles", "[B, 2] int", "whole",
              "tiles per column and per row of the burst's frame"),
    ArraySpec("bursts/scored", "[B] bool", "1", "stage-1 completion flag per burst"),
    ArraySpec("stats/s_yr", "[B, P2, T] float32", "one burst",
              "s_yr of every (offset, tile) pair, tiles row-major, NaN past the burst's tiles"),
    ArraySpec("stats/r_mean", "[B, P2, T] float32", "one burst",
              "mean(target - y) of the same pairs"),
    ArraySpec("nnf/<burst>", "[H+P, W+P, 3] int16", "whole",
              "(t, dy, dx) per query patch: the match of the center frame's patch at (y, x) of "
              "the extended frame is frame t at (y + dy, x + dx); format 2 always (the trainer "
              "crafts targets from it), format 1 only with `--keep-nnf`"),
    ArraySpec("sources/<s>/frames", "[F, H, W, C] uint8, uint16 or float32", "one frame",
              "the frames of sequence s (4 digits) in the input's own sample type (the clean "
              "frames when the noise is synthesised); only frames some burst uses are written",
              "2"),
    ArraySpec("sources/<s>/noisy", "[F, H, W, C] float32", "one frame",
              "the same frames with the synthetic noise (seeded per frame: one noise per frame "
              "whichever bursts use it), only when the noise was synthesised", "2"),
    ArraySpec("sources/<s>/written", "[F] bool", "1", "completion flag per frame", "2"),
    ArraySpec("bursts/tiles", "[B + 1] int64", "whole",
              "burst b's training tiles are rows `bursts/tiles[b]` to `bursts/tiles[b + 1]` of "
              "the whole tile table (bursts in order, each burst's tiles row-major)", "2"),
    ArraySpec("tiles/<burst>/position", "[n, 2] int32", "whole",
              "top-left (row, col) of each of the burst's training tiles (the tiles with at "
              "least one kept offset, row-major)", "2"),
    ArraySpec("tiles/<burst>/kept", "[n, P2] bool", "whole",
              "which offsets of each tile passed the filter (the pairs' s_yr and r_mean are in "
              "`stats/`): training draws one of them each time it sees the tile", "2"),
    ArraySpec("samples/burst", "[N] int32", "64", "burst of each training tile", "1"),
    ArraySpec("samples/position", "[N, 2] int32", "64", "tile top-left (row, col) in the frame",
              "1"),
    ArraySpec("samples/offsets", "[N, K, 2] int16", "64", "(k, l) of each stored target", "1"),
    ArraySpec("samples/valid", "[N, K] bool", "64",
              "which of the K targets exist (a tile keeps 1..K)", "1"),
    ArraySpec("samples/s_yr", "[N, K] float32", "64",
              "s_yr of each stored target (NaN where not valid)", "1"),
    ArraySpec("samples/input", "[N, S, S, C] float32", "64 samples", "the noisy input tile y",
              "1"),
    ArraySpec("samples/targets", "[N, K, S, S, C] float32", "64 samples",
              "its patch-craft targets (NaN where not valid)", "1"),
    ArraySpec("samples/clean", "[N, S, S, C] float32", "64 samples",
              "the clean tile, only when the noise was synthesised: for evaluation, never for "
              "training", "1"),
    ArraySpec("samples/materialised", "[ceil(N/64)] bool", "1",
              "stage-3 completion flag per sample chunk", "1"),
    ArraySpec("validation/bursts", "[V, 3 + M] int", "whole",
              "held-out bursts: index, source, center, then frame indices"),
    ArraySpec("validation/<burst>/input", "[n, S, S, C] float32", "whole",
              "a held-out burst's input tiles (non-overlapping, at most `validation_tiles` of "
              "the frame's, evenly spread, row-major); the group's attributes: `complete`, "
              "and `copied_from` (the store's location) where `--validation-from` copied them"),
    ArraySpec("validation/<burst>/targets", "[n, K, S, S, C] float32", "whole",
              "their validation targets, `validation_targets`: patch-craft or guided (matched "
              "on a smoothed copy), K random offsets at `validation_patch_size`; or ring (K = 1: "
              "each pixel matched by the `validation_patch_size` window less the "
              "`validation_hole` square around it); never trained on"),
    ArraySpec("validation/<burst>/clean", "[n, S, S, C] float32", "whole",
              "the clean tiles, only when the noise was synthesised: for measuring, never for "
              "choosing"),
)

ATTRIBUTES = {
    "format, format_version": '`"pcst-store"`, `2` (or `1`, see below); readers refuse '
                              "anything else",
    "package_version": "pcst version that created the store",
    "status": '`"building"` until every stage finished, then `"complete"`; trainers refuse the '
              "former",
    "parameters": "every resolved build parameter (`BuildConfig`, see `pcst-prep build --help`)",
    "input_dir, sources": "the input directory and, per sequence, `path` (relative), "
                          "`n_frames`, `height`, `width`, `channels`",
    "channels": "channels of every frame (1 or 3)",
    "fingerprint": "what determines the contents (parameters, sources, bursts, and `inputs`: a "
                   "content hash of every input file); a resumed build must match it",
    "filter": "the tile filter (`pcst_prep.statistics.TileFilter`): `s_min`; `r_low`, `r_high`: "
              "the r_mean window (with `parameters.filter` false, finite bounds below/above every "
              "value, so every scored pair is kept); `r_center`: mean r_mean inside it, **to be "
              "subtracted from targets at training time**; `mean_std`, `bins`, `s_yr_range`, "
              "`scored_pairs`, `kept_pairs`",
    "tuning": "with `--patch-size auto` only: how p was chosen (`pcst_prep.tune.TuneReport`: the "
              "chosen `patch_size`, per candidate the peak of s_yr, kept share, noise fit "
              "and share of matches at the search radius, the noise sigma and correlation "
              "(lags 1 to 6; stores from before 2026-11-26: lags 1 to 3, pooled), the "
              "recommended `validation_hole` (absent before 2026-11-26) and "
              "`validation_patch_size`, the ring's window (absent before 2026-11-27))",
    "counts": "`bursts`, `scored_pairs`, `kept_pairs`, `samples`, `valid_targets`, "
              "`validation_tiles`",
}


def schema_markdown() -> str:
    """The attribute and array tables of ``data/README.md``, generated from the schema."""
    lines = ["### Root attributes", "", "| key | meaning |", "| --- | --- |"]
    lines += [f"| {', '.join(f'`{k}`' for k in key.split(', '))} | {meaning} |"
              for key, meaning in ATTRIBUTES.items()]
    lines += ["", "### Arrays", "", "| array | format | shape, dtype | chunks | meaning |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{a.name}` | {a.formats} | {a.shape} | {a.chunks} | {a.meaning} |"
              for a in ARRAYS]
    return "\n".join(lines) + "\n"


def location(path) -> Path | str:
    """Where a store lives: a resolved local Path, or an fsspec URL kept as given."""
    text = str(path)
    if text.startswith("file://"):
        return Path(text[len("file://"):]).resolve()
    return text if is_url(text) else Path(text).resolve()


def is_url(path) -> bool:
    return "://" in str(path)


def store_name(path) -> str:
    """The store's last path component without ``.zarr`` (for default file names)."""
    return str(path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")


def _filesystem(url: str):
    """(fsspec filesystem, path) of a URL; a protocol that fsspec cannot serve is bad input."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot open this URL ({exc})", url) from None


def _exists(path) -> bool:
    if isinstance(path, Path):
        return path.exists()
    fs, inner = _filesystem(path)
    return fs.exists(inner)


def _is_empty_dir(path) -> bool:
    if isinstance(path, Path):
        return path.is_dir() and not any(path.iterdir())
    fs, inner = _filesystem(path)
    return fs.isdir(inner) and not fs.ls(inner)


def _remove(path):
    if isinstance(path, Path):
        shutil.rmtree(path)
    else:
        fs, inner = _filesystem(path)
        fs.rm(inner, recursive=True)


@contextmanager
def writer_lock(path):
    """Hold the single-writer lock of the store at ``path`` for the duration of a build.

    The lock is a small file beside the store (``<store>.lock``: host, pid, start time). A
    second build is refused with the holder's name. A lock left by a killed build on this host
    (its process is gone) is taken over; one from another host is refused, since its process
    cannot be checked: delete the file once that build is known to be dead. Locally the file is
    created atomically (a shared file system that honours O_EXCL, such as NFS v3+, is safe); on
    an object store it is checked, then written, so two builds started within the same moment
    may both proceed.
    """
    path = location(path)
    if isinstance(path, Path):
        lock = path.parent / f"{path.name}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create store ({exc.strerror or exc})", path) from None
    else:
        _filesystem(path)  # an unknown protocol is named with the store's URL
        lock = f"{path}.lock"
    holder = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    _acquire(lock, holder)
    try:
        yield
    finally:
        _remove_lock(lock)


def refuse_if_building(path):
    """Refuse at once a store that a live build holds (its lock, a local store only): what a
    second build checks before its planning and tuning, and a reader of an unfinished store
    before it advises building again."""
    path = location(path)
    if not isinstance(path, Path):
        return
    lock = path.parent / f"{path.name}.lock"
    current = _read_lock(lock) if lock.exists() else {}
    if current and _held(current):
        raise InputError(f"is being built by process {current.get('pid')} on "
                         f"{current.get('host')} since {current.get('since')} (lock {lock}); "
                         "wait for it, or delete the lock if that build is dead", lock)


def _acquire(lock, holder: dict):
    for _ in range(2):
        try:
            _create_lock(lock, holder)
            return
        except FileExistsError:
            current = _read_lock(lock)
            if _held(current):
                raise InputError(
                    f"is being built by process {current.get('pid')} on "
                    f"{current.get('host')} since {current.get('since')} (lock {lock}); wait "
                    "for it, or delete the lock if that build is dead", lock) from None
            _remove_lock(lock)  # a killed build's lock: take it over
    raise InputError("cannot take the store's lock", lock)


def _held(current: dict) -> bool:
    """Whether a lock's holder may be building: a live process of this host, or any process of
    another (which cannot be checked); a killed build's lock on this host is stale."""
    return current.get("host") != socket.gethostname() or _process_alive(current.get("pid"))


def _create_lock(lock, holder: dict):
    text = json.dumps(holder).encode()
    if isinstance(lock, Path):
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(descriptor, "wb") as f:
            f.write(text)
        return
    fs, inner = _filesystem(lock)
    if fs.exists(inner):
        raise FileExistsError(lock)
    fs.pipe_file(inner, text)


def _read_lock(lock) -> dict:
    try:
        if isinstance(lock, Path):
            return json.loads(lock.read_text())
        fs, inner = _filesystem(lock)
        return json.loads(fs.cat_file(inner))
    except (OSError, ValueError):
        return {}


def _remove_lock(lock):
    try:
        if isinstance(lock, Path):
            lock.unlink()
        else:
            fs, inner = _filesystem(lock)
            fs.rm_file(inner)
    except (OSError, FileNotFoundError):
        pass


def _process_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def chunk_codecs() -> tuple:
    """Every chunk: Blosc (zstd, byte shuffle), then a CRC-32C checksum, so that a damaged
    chunk is an error when read, never silently other numbers (zstd alone decodes many
    damaged chunks without complaint)."""
    return (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), Crc32cCodec())


class StoreDamaged(InputError):
    """A store whose metadata or chunk cannot be read: the message names the array and the
    chunk (``pcst-prep check STORE`` lists every damaged one)."""


CHECK_HINT = "the store is damaged (pcst-prep check lists every damaged chunk; rebuild it)"


def _root(group: zarr.Group) -> str:
    store = group.store
    return str(getattr(store, "root", None) or getattr(store, "path", None) or store)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """``group[name]``; metadata that cannot be read is :class:`StoreDamaged`, naming it
    (KeyError, for a node that is not there, passes: callers check existence). A store opened
    read-only keeps the arrays it opened: a trainer reading an object store then asks for each
    array's metadata once, not once per burst."""
    cache = group.__dict__.setdefault("_pcst_arrays", {}) if group.read_only else None
    if cache is not None and name in cache:
        return cache[name]
    try:
        array = group[name]
        if cache is not None:
            cache[name] = array
        return array
    except KeyError:
        raise
    except Exception as exc:
        raise StoreDamaged(f"{name}: metadata cannot be read ({_why(exc)}); {CHECK_HINT}",
                           _root(group)) from None


def _read(group: zarr.Group, name: str, rows=slice(None)) -> np.ndarray:
    """Rows of an array (a slice, or an integer array for an orthogonal selection along the
    first axis); a chunk that cannot be read is :class:`StoreDamaged`, naming it."""
    array = _array(group, name)
    try:
        if isinstance(rows, np.ndarray):
            return array.get_orthogonal_selection((rows,))
        return array[rows]
    except Exception as exc:
        damaged = next(iter(damaged_chunks(array, rows)), None)
        where = (f"chunk {damaged[0]} cannot be read ({damaged[1]})" if damaged
                 else f"cannot be read ({_why(exc)})")
        raise StoreDamaged(f"{name}: {where}; {CHECK_HINT}", _root(group)) from None


def damaged_chunks(array: zarr.Array, rows=slice(None)):
    """Yields (chunk key, reason) for each chunk of ``array`` that cannot be read, among those
    that hold the given rows (all by default), in order."""
    import itertools

    n_rows = array.shape[0] if array.ndim else 1
    if isinstance(rows, slice):
        rows = np.arange(n_rows)[rows]
    rows = np.asarray(rows).ravel()
    if array.ndim == 0:
        grids = [()]
    else:
        first = np.unique(rows // array.chunks[0]) if len(rows) else np.arange(0)
        grids = itertools.product(first, *(range(n) for n in array.cdata_shape[1:]))
    for coords in grids:
        region = tuple(slice(c * size, (c + 1) * size) for c, size in zip(coords, array.chunks))
        try:
            array[region]
        except Exception as exc:
            yield array.metadata.encode_chunk_key(tuple(int(c) for c in coords)), _why(exc)


def _listing(group: zarr.Group, prefix: str) -> list[str]:
    """Names below ``prefix`` in the store, listed without reading their metadata (a group's
    ``members()`` fails whole when one member's metadata is damaged)."""
    from zarr.core.sync import sync

    async def names():
        return sorted([k async for k in group.store.list_dir(prefix) if k != "zarr.json"])

    return sync(names())


@contextmanager
def reading(group: zarr.Group, *names: str):
    """Around a read of whole arrays by another library (Dask): a failure becomes
    :class:`StoreDamaged` naming the first damaged chunk of ``names``, if one is."""
    try:
        yield
    except InputError:
        raise
    except Exception:
        for name in names:
            for chunk, reason in damaged_chunks(_array(group, name)):
                raise StoreDamaged(f"{name}: chunk {chunk} cannot be read ({reason}); "
                                   f"{CHECK_HINT}", _root(group)) from None
        raise


def check(path, progress: bool = False, chunks: bool = True) -> list[str]:
    """Read every array's metadata and every chunk of a store; one "array: problem" line per
    damaged node or chunk (empty: nothing damaged). ``progress``: report the chunks read;
    ``chunks=False``: the metadata only (cheap).

    Finds metadata that does not parse or names an unknown codec, and chunks that fail their
    checksum, do not decompress or have the wrong size. A chunk that is missing (read as its
    fill value) is not found, nor, in stores written before chunks had checksums, a damaged
    chunk that still decompresses."""
    from .progress import Progress

    group = open_store(path)
    problems, arrays = [], []

    def walk(node: zarr.Group, prefix: str):
        for name in _listing(group, prefix):
            key = f"{prefix}{name}"
            try:
                child = node[name]
            except KeyError:  # not a node: a stray file or folder
                continue
            except Exception as exc:
                problems.append(f"{key}: metadata cannot be read ({_why(exc)})")
                continue
            if isinstance(child, zarr.Group):
                walk(child, key + "/")
            else:
                arrays.append((key, child))

    walk(group, "")
    if not chunks:
        return problems
    bar = Progress(sum(a.nchunks for _, a in arrays), "check", "chunk", enabled=progress)
    try:
        for key, array in arrays:
            for chunk, reason in damaged_chunks(array):
                problems.append(f"{key}: chunk {chunk} cannot be read ({reason})")
            bar.update(array.nchunks)
    finally:
        bar.close()
    return problems


def is_pcst_store(path) -> bool:
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:
        return False
    return group.attrs.get("format") == FORMAT


def open_store(path, mode: str = "r", complete: bool = False) -> zarr.Group:
    """Open an existing pcst store, refusing anything else with a clear message.

    ``complete``: also refuse a store whose build has not finished or that holds no training
    samples (what a trainer needs).
    """
    path = location(path)
    if not _exists(path):
        raise InputError("no such store", path)
    try:
        group = zarr.open_group(str(path), mode=mode)
    except Exception as exc:
        if is_url(path):  # fsspec cannot tell a missing store from an unreadable one everywhere
            raise InputError(f"no such store, or not a Zarr store ({type(exc).__name__})",
                             path) from None
        if (Path(path) / "zarr.json").is_file():
            raise StoreDamaged(f"zarr.json: the store's root metadata cannot be read "
                               f"({_why(exc)}); the store is damaged (rebuild it)",
                               path) from None
        raise InputError("not a Zarr store", path) from None
    if group.attrs.get("format") != FORMAT:
        raise InputError("not a pcst store (no pcst format marker)", path)
    version = group.attrs.get("format_version")
    if version not in FORMAT_VERSIONS:
        raise InputError(f"store format version {version} is not supported (this pcst reads "
                         f"{' and '.join(map(str, FORMAT_VERSIONS))})", path)
    if complete:
        if group.attrs.get("status") != "complete":
            refuse_if_building(path)
            raise InputError("the build of this store did not finish; run the same pcst-prep "
                             "build command again to complete it", path)
        try:
            n = n_samples(group)
        except KeyError:
            n = 0
        if n == 0:
            raise InputError("store holds no training samples", path)
    return group


def prepare(path, fingerprint: dict, layout: dict, overwrite: bool) -> tuple[zarr.Group, bool]:
    """Create a store, or reopen one whose build defines the same contents.

    Parameters
    ----------
    path : path or URL of the store
    fingerprint : dict
        Everything that determines the store's contents (parameters, sources, bursts). A store
        with another fingerprint is refused unless ``overwrite``.
    layout : dict
        ``n_bursts``, ``n_offsets``, ``max_tiles``, ``channels``, ``format_version``.
    overwrite : bool
        Replace an existing pcst store (never anything that is not a pcst store).

    Returns
    -------
    (group, resumed)
    """
    path = location(path)
    if _exists(path):
        if not is_pcst_store(path):
            if _is_empty_dir(path):
                _remove(path)
            else:
                raise InputError("exists and is not a pcst store; choose another path", path)
        elif overwrite:
            _remove(path)
        else:
            group = open_store(path, mode="r+")
            stored = group.attrs.get("fingerprint") or {}
            if stored != fingerprint:
                raise InputError("holds a build with different "
                                 f"{_differences(stored, fingerprint)}; use --overwrite to "
                                 "replace it", path)
            return group, True
    try:
        group = zarr.open_group(str(path), mode="w-")
    except Exception as exc:
        raise InputError(f"cannot create store ({exc})", path) from None
    n_bursts = layout["n_bursts"]
    stats_shape = (n_bursts, layout["n_offsets"], layout["max_tiles"])
    for name in ("s_yr", "r_mean"):
        group.create_array(f"stats/{name}", shape=stats_shape, dtype="float32",
                           chunks=(1,) + stats_shape[1:], compressors=chunk_codecs(),
                           fill_value=np.nan)
    group.create_array("bursts/scored", shape=(n_bursts,), chunks=(1,), dtype="bool",
                       fill_value=False)
    group.attrs.update({
        "format": FORMAT,
        "format_version": layout.get("format_version", FORMAT_VERSION),
        "package_version": __version__,
        "status": "building",
        "fingerprint": fingerprint,
    })
    return group, False


def _differences(stored: dict, wanted: dict) -> str:
    """What differs between two fingerprints, naming the parameters and their values."""
    parts = []
    for key in sorted(set(stored) | set(wanted)):
        if stored.get(key) == wanted.get(key):
            continue
        if key == "inputs" and isinstance(stored.get(key), dict):
            old, new = stored[key], wanted.get(key) or {}
            changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
            parts.append(f"input files: {', '.join(changed[:3])}"
                         + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
                         + " changed since it was built")
        elif key == "parameters" and isinstance(stored.get(key), dict):
            old, new = stored[key], wanted.get(key) or {}
            parts += [f"{name} (stored {old.get(name)!r}, now {new.get(name)!r})"
                      for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        else:
            parts.append(key)
    return ", ".join(parts) or "settings"


def write_table(group: zarr.Group, name: str, values: np.ndarray, chunk: int | None = None):
    """A small array written at once by the driver (never by parallel tasks)."""
    values = np.asarray(values)
    chunks = values.shape if chunk is None else (chunk,) + values.shape[1:]
    chunks = tuple(max(1, c) for c in chunks)
    array = group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=chunks,
                               compressors=chunk_codecs(), overwrite=True)
    if values.size:
        array[...] = values
    return array


def create_sample_arrays(group: zarr.Group, n_samples: int, targets: int, tile: int,
                         channels: int, with_clean: bool):
    """The training arrays, chunked along the sample axis by :data:`SAMPLE_CHUNK`."""
    n_chunks = -(-n_samples // SAMPLE_CHUNK)
    image = (tile, tile, channels)
    specs = {"input": (n_samples,) + image, "targets": (n_samples, targets) + image}
    if with_clean:
        specs["clean"] = (n_samples,) + image
    for name, shape in specs.items():
        if f"samples/{name}" in group:
            continue
        group.create_array(f"samples/{name}", shape=shape, dtype="float32",
                           chunks=(SAMPLE_CHUNK,) + shape[1:], compressors=chunk_codecs(),
                           fill_value=np.nan)
    if "samples/materialised" not in group:
        group.create_array("samples/materialised", shape=(n_chunks,), chunks=(1,),
                           dtype="bool", fill_value=False)
    return n_chunks


def store_size(path) -> int:
    """Bytes on disk (or in the object store)."""
    path = location(path)
    if isinstance(path, Path):
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    fs, inner = _filesystem(path)
    return int(fs.du(inner))


# --- the build's reads and writes ------------------------------------------------------------


def describe(group: zarr.Group, parameters: dict, input_dir: str, sources: list, channels: int,
             tuning: dict | None = None):
    """The build's resolved parameters, its input, the channels of every frame, and how p
    was chosen when it was chosen automatically."""
    group.attrs.update({"parameters": parameters, "input_dir": input_dir, "sources": sources,
                        "channels": channels})
    if tuning is not None:
        group.attrs["tuning"] = tuning


def write_burst_table(group: zarr.Group, sources, frames, centers, n_tiles):
    """Per burst: its sequence, frame indices, input frame and tile counts."""
    for name, values in (("source", sources), ("frames", frames), ("center", centers),
                         ("n_tiles", n_tiles)):
        write_table(group, f"bursts/{name}", values)


def scored_bursts(group: zarr.Group) -> np.ndarray:
    """bool [B]: which bursts finished stage 1."""
    return _read(group, "bursts/scored")


def write_burst_scores(group: zarr.Group, burst: int, s_yr, r_mean, nnf=None):
    """Stage 1's results for one burst (s_yr, r_mean [n_offsets, ...tiles]), then its flag."""
    if nnf is not None:
        group.create_array(f"nnf/{burst:06d}", shape=nnf.shape, dtype="int16", chunks=nnf.shape,
                           compressors=chunk_codecs(), overwrite=True)[...] = nnf
    for name, values in (("s_yr", s_yr), ("r_mean", r_mean)):
        array = group[f"stats/{name}"]
        values = np.asarray(values).reshape(len(values), -1)
        row = np.full(array.shape[1:], np.nan, np.float32)  # the whole chunk: no read-back
        row[:, :values.shape[1]] = values
        array[burst] = row
    group["bursts/scored"][burst] = True


def score_arrays(group: zarr.Group) -> tuple[zarr.Array, zarr.Array]:
    """The s_yr and r_mean arrays [B, P2, T] of every scored pair (NaN past a burst's tiles),
    to be read whole or reduced out of core (``dask.array.from_zarr``)."""
    return _array(group, "stats/s_yr"), _array(group, "stats/r_mean")


def read_burst_scores(group: zarr.Group, burst: int, n_tiles: int):
    """s_yr, r_mean [P2, n_tiles] of one burst."""
    return tuple(_read(group, f"stats/{name}", slice(burst, burst + 1))[0, :, :n_tiles]
                 for name in ("s_yr", "r_mean"))


def read_nnf(group: zarr.Group, burst: int) -> np.ndarray:
    return _read(group, f"nnf/{burst:06d}")


def has_nnf(group: zarr.Group, burst: int) -> bool:
    return f"nnf/{burst:06d}" in group


def read_filter(group: zarr.Group):
    """The store's :class:`~pcst_prep.statistics.TileFilter`, or None before stage 2."""
    from .statistics import TileFilter

    values = group.attrs.get("filter")
    return None if values is None else TileFilter.from_attrs(values)


def write_samples_table(group: zarr.Group, table: dict, tile_filter):
    """The chosen samples (``burst``, ``position``, ``offsets``, ``valid``, ``s_yr``), then the
    filter that chose them: the filter is written last, so its presence means stage 2 is done."""
    for name, values in table.items():
        write_table(group, f"samples/{name}", values, SAMPLE_CHUNK)
    group.attrs["filter"] = tile_filter.to_attrs()


def read_samples_table(group: zarr.Group, start: int, stop: int) -> dict:
    """``burst``, ``position``, ``offsets``, ``valid`` of samples start..stop."""
    return {name: _read(group, f"samples/{name}", slice(start, stop))
            for name in ("burst", "position", "offsets", "valid")}


def materialised_chunks(group: zarr.Group) -> np.ndarray:
    """bool [ceil(N / SAMPLE_CHUNK)]: which sample chunks finished stage 3."""
    return _read(group, "samples/materialised")


def write_sample_chunk(group: zarr.Group, chunk: int, inputs, targets, clean=None):
    """One chunk of training tiles (stage 3), then its flag."""
    start = chunk * SAMPLE_CHUNK
    stop = start + len(inputs)
    group["samples/input"][start:stop] = inputs
    group["samples/targets"][start:stop] = targets
    if clean is not None:
        group["samples/clean"][start:stop] = clean
    group["samples/materialised"][chunk] = True


# format 2: the frames once, the nnf, the table of kept (tile, offset) pairs


def create_source_arrays(group: zarr.Group, source: int, n_frames: int, shape, dtype,
                         noisy: bool):
    """The frame arrays of one sequence (format 2): one chunk per frame, nothing written."""
    prefix = f"sources/{source:04d}"
    shape = (n_frames,) + tuple(shape)
    arrays = {"frames": dtype, "noisy": "float32"} if noisy else {"frames": dtype}
    for name, kind in arrays.items():
        if f"{prefix}/{name}" not in group:
            group.create_array(f"{prefix}/{name}", shape=shape, dtype=kind,
                               chunks=(1,) + shape[1:], compressors=chunk_codecs(),
                               fill_value=0)
    if f"{prefix}/written" not in group:
        group.create_array(f"{prefix}/written", shape=(n_frames,), chunks=(1,), dtype="bool",
                           fill_value=False)


def written_frames(group: zarr.Group, source: int) -> np.ndarray:
    """bool [F]: which frames of a sequence are in the store (format 2)."""
    return _read(group, f"sources/{source:04d}/written")


def write_frames(group: zarr.Group, source: int, indices, frames, noisy=None):
    """Frames of one sequence at ``indices`` (each its own chunk), then their flags."""
    prefix = f"sources/{source:04d}"
    for i, index in enumerate(indices):
        group[f"{prefix}/frames"][index] = frames[i]
        if noisy is not None:
            group[f"{prefix}/noisy"][index] = noisy[i]
    for index in indices:
        group[f"{prefix}/written"][index] = True


def write_burst_tiles(group: zarr.Group, burst: int, position, kept):
    """One burst's training tiles (format 2): its own arrays, written by one task."""
    prefix = f"tiles/{burst:06d}"
    for name, values in (("position", np.asarray(position, np.int32).reshape(-1, 2)),
                         ("kept", np.asarray(kept, bool))):
        array = group.create_array(f"{prefix}/{name}", shape=values.shape, dtype=values.dtype,
                                   chunks=tuple(max(1, n) for n in values.shape),
                                   compressors=chunk_codecs(), overwrite=True)
        if values.size:
            array[...] = values


def finish_tiles(group: zarr.Group, counts, tile_filter):
    """After every burst's tiles: their offsets in the whole table, then the filter that chose
    them, written last so that its presence means stage 2 is done."""
    write_table(group, "bursts/tiles", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    group.attrs["filter"] = tile_filter.to_attrs()


def finish(group: zarr.Group, counts: dict, keep_nnf: bool):
    """Mark a build complete (dropping a format-1 store's nnf unless kept)."""
    if format_version(group) == 1 and not keep_nnf and "nnf" in group:
        del group["nnf"]
    group.attrs.update({"counts": counts, "status": "complete"})


def write_validation_table(group: zarr.Group, bursts: list):
    """The held-out bursts: rows (index, source, center, *frame indices)."""
    if bursts:
        write_table(group, "validation/bursts",
                    [[b.index, b.source, b.center, *b.frame_indices] for b in bursts])


def held_out_frames(group: zarr.Group) -> dict[str, list[int]]:
    """Per input sequence (its path relative to the input directory), the frames of its
    held-out bursts: never trained on, so the frames to evaluate a model on."""
    if "validation/bursts" not in group:
        return {}
    sources = group.attrs.get("sources") or []
    frames: dict[str, set[int]] = {}
    for row in _read(group, "validation/bursts"):
        source = int(row[1])
        path = sources[source]["path"] if source < len(sources) else f"source {source}"
        frames.setdefault(path, set()).update(int(f) for f in row[3:])
    return {path: sorted(f) for path, f in frames.items()}


def subgroups(group: zarr.Group) -> list[tuple[str, zarr.Group]]:
    """``group``'s subgroups, (name, group). A store read while it is built (``info``,
    ``histogram``, a progress poll) can hold a writer's temporary file (zarr's ``*.partial``,
    renamed into place when written); it is skipped without zarr's warning about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\.partial is not recognized as a "
                                "component of a Zarr hierarchy")
        return list(group.groups())


def validated_bursts(group: zarr.Group) -> set[int]:
    """Indices of the held-out bursts whose validation tiles are written."""
    if "validation" not in group:
        return set()
    return {int(name) for name, node in subgroups(group["validation"])
            if node.attrs.get("complete")}


def n_validation_tiles(group: zarr.Group) -> int:
    return sum(_array(group, f"validation/{i:06d}/input").shape[0]
               for i in validated_bursts(group))


def write_validation_burst(group: zarr.Group, burst: int, inputs, targets, clean=None,
                           copied_from: str | None = None):
    """One held-out burst's validation tiles, then its completion mark (with ``copied_from``,
    the store they were copied from, in the same write)."""
    sub = group.require_group(f"validation/{burst:06d}")
    arrays = {"input": inputs, "targets": targets}
    if clean is not None:
        arrays["clean"] = clean
    for name, values in arrays.items():
        sub.create_array(name, shape=values.shape, dtype="float32",
                         chunks=tuple(max(1, n) for n in values.shape),
                         compressors=chunk_codecs(), overwrite=True)[...] = values
    sub.attrs.update({"complete": True} | ({"copied_from": copied_from} if copied_from else {}))


def validation_sources(group: zarr.Group) -> dict[str, int]:
    """Per store that validation tiles were copied from (``--validation-from``), how many
    held-out bursts' tiles came from it; empty when the build computed them all."""
    sources: dict[str, int] = {}
    if "validation" in group:
        for _, node in subgroups(group["validation"]):
            if node.attrs.get("complete") and node.attrs.get("copied_from"):
                sources[node.attrs["copied_from"]] = sources.get(node.attrs["copied_from"], 0) + 1
    return sources


# --- the trainer's reads ---------------------------------------------------------------------


def channels(group: zarr.Group) -> int:
    return int(group.attrs["channels"])


def format_version(group: zarr.Group) -> int:
    return int(group.attrs["format_version"])


def parameters(group: zarr.Group) -> dict:
    return dict(group.attrs["parameters"])


def n_samples(group: zarr.Group) -> int:
    """Training tiles: samples of a format-1 store, tiles of a format-2 one."""
    if format_version(group) == 1:
        return _array(group, "samples/burst").shape[0]
    return int(_read(group, "bursts/tiles")[-1])


def tile_size(group: zarr.Group) -> int:
    return int(parameters(group)["tile_size"])


def burst_table(group: zarr.Group) -> dict:
    """Per burst: ``source``, ``frames`` [B, M], ``center``, ``n_tiles``, and (format 2)
    ``tiles``, the offsets of its tiles in the whole tile table."""
    names = ["source", "frames", "center", "n_tiles"]
    if format_version(group) == 2 and "bursts/tiles" in group:
        names.append("tiles")
    return {name: _read(group, f"bursts/{name}") for name in names}


def read_tiles(group: zarr.Group, burst: int) -> dict:
    """``position`` [n, 2] and ``kept`` [n, P2] of one burst's training tiles (format 2)."""
    return {name: _read(group, f"tiles/{burst:06d}/{name}") for name in ("position", "kept")}


def read_frames(group: zarr.Group, source: int, indices, noisy: bool) -> np.ndarray:
    """float32 [len(indices), H, W, C] in [0, 1] (format 2): frames of sequence ``source`` as
    training sees them (``noisy``: with the synthetic noise, where it was synthesised) or as
    the input holds them, converted exactly as the build converts input files."""
    from .bursts import as_float

    prefix = f"sources/{source:04d}"
    name = f"{prefix}/noisy" if noisy and has_clean(group) else f"{prefix}/frames"
    return as_float(_read(group, name, np.asarray(indices, np.int64)))


def description(group: zarr.Group) -> dict:
    """Every root attribute (see :data:`ATTRIBUTES`), as plain data."""
    return group.attrs.asdict()


def sample_shape(group: zarr.Group) -> tuple[int, int, int, int, int]:
    """(N, K, S, S, C): samples, targets per sample (format 2: offsets per tile, p^2), tile
    side twice, channels; zeros before the samples are chosen."""
    if format_version(group) == 2:
        if "bursts/tiles" not in group:
            return (0, 0, 0, 0, 0)
        n, k = n_samples(group), _array(group, "stats/s_yr").shape[1]
        return (n, k, tile_size(group), tile_size(group), channels(group))
    if "samples/targets" not in group:
        return (0, 0, 0, 0, 0)
    return tuple(_array(group, "samples/targets").shape)


def has_clean(group: zarr.Group) -> bool:
    """Whether the store holds clean tiles or frames (its noise was synthesised)."""
    if format_version(group) == 1:
        return "samples/clean" in group
    return parameters(group).get("noise", "none") not in (None, "", "none")


def sample_chunk(group: zarr.Group) -> int:
    return _array(group, "samples/input").chunks[0]


def valid_targets(group: zarr.Group) -> np.ndarray:
    return _read(group, "samples/valid")


def read_samples(group: zarr.Group, start: int, stop: int, clean_targets: bool = False):
    """(input [n, S, S, C], targets [n, K, S, S, C], valid [n, K]) of samples start..stop.

    With ``clean_targets`` the one target is the clean tile (the supervised baseline)."""
    rows = slice(start, stop)
    inputs = _read(group, "samples/input", rows)
    if clean_targets:
        return inputs, _read(group, "samples/clean", rows)[:, None], np.ones((len(inputs), 1),
                                                                             bool)
    return inputs, _read(group, "samples/targets", rows), _read(group, "samples/valid", rows)


def read_clean_pairs(group: zarr.Group, indices) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) input tiles [n, S, S, C] of the given samples."""
    rows = np.asarray(indices)
    return _read(group, "samples/input", rows), _read(group, "samples/clean", rows)


def read_validation_burst(group: zarr.Group, burst: int):
    """(input, targets, clean or None) of one held-out burst's validation tiles."""
    name = f"validation/{burst:06d}"
    clean = _read(group, f"{name}/clean") if f"{name}/clean" in group else None
    return _read(group, f"{name}/input"), _read(group, f"{name}/targets"), clean


# Build parameters that a held-out burst's validation tiles do not depend on (see
# pcst_prep.stages.validation_burst: they are made at ``validation_patch_size``).
VALIDATION_FREE_PARAMETERS = ("patch_size",)


def validation_differences(donor: zarr.Group, fingerprint: dict) -> str | None:
    """What keeps ``donor``'s validation tiles from being those that a build with
    ``fingerprint`` would compute (its input files, held-out bursts or a parameter other than
    :data:`VALIDATION_FREE_PARAMETERS`); None when nothing does."""
    stored = dict(donor.attrs.get("fingerprint") or {})
    keys = ("parameters", "sources", "validation", "inputs")
    old, new = ({k: f.get(k) for k in keys} for f in (stored, fingerprint))
    for f in (old, new):
        f["parameters"] = {k: v for k, v in (f["parameters"] or {}).items()
                           if k not in VALIDATION_FREE_PARAMETERS}
    return None if old == new else _differences(old, new)


def read_validation(group: zarr.Group):
    """(input [n, S, S, C], targets [n, K, S, S, C], clean or None) of every held-out tile,
    burst by burst in index order; None when the store holds no validation set."""
    indices = sorted(validated_bursts(group))
    if not indices:
        return None
    names = [f"validation/{i:06d}" for i in indices]
    inputs = np.concatenate([_read(group, f"{n}/input") for n in names])
    targets = np.concatenate([_read(group, f"{n}/targets") for n in names])
    clean = (np.concatenate([_read(group, f"{n}/clean") for n in names])
             if all(f"{n}/clean" in group for n in names) else None)
    return inputs, targets, clean


if __name__ == "__main__":  # python -m pcst_prep.store: the tables of data/README.md
    print(schema_markdown(), end="")
