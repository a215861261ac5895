"""The Zarr v3 store: the one contract between pcst_prep and pcst_train.

The schema is documented in ``data/README.md``. This module is the only one that knows array
names, chunking and codecs; pcst_train reads the same names (it does not import this module, so
that it never imports numba or dask through pcst_prep).

Parallel writers only ever write whole chunks they own: one burst's row of the statistics, one
burst's nnf, one chunk of samples. Progress flags are arrays chunked by one element, set after
the data they vouch for is written, so that an interrupted build resumes where it stopped.

A store is a local directory or an fsspec URL (``s3://bucket/run.zarr``, ``gs://...``,
``memory://...``; credentials come from fsspec's usual configuration, and the protocol's
package, s3fs say, must be installed). ``file://`` URLs are local paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from . import __version__
from .errors import InputError

FORMAT = "pcst-store"
FORMAT_VERSION = 1
SAMPLE_CHUNK = 64  # samples per chunk of the training arrays


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


def compressor():
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")


def is_pcst_store(path) -> bool:
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:
        return False
    return group.attrs.get("format") == FORMAT


def open_store(path, mode: str = "r") -> zarr.Group:
    """Open an existing pcst store, refusing anything else with a clear message."""
    path = location(path)
    if not _exists(path):
        raise InputError("no such store", path)
    try:
        group = zarr.open_group(str(path), mode=mode)
    except Exception:
        raise InputError("not a Zarr store", path) from None
    if group.attrs.get("format") != FORMAT:
        raise InputError("not a pcst store (no pcst format marker)", path)
    version = group.attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(f"store format version {version} is not supported (this pcst reads "
                         f"{FORMAT_VERSION})", path)
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
        ``n_bursts``, ``burst_length``, ``n_offsets``, ``max_tiles``, ``channels``.
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
            if group.attrs.get("fingerprint") != fingerprint:
                differing = sorted(k for k in fingerprint
                                   if group.attrs["fingerprint"].get(k) != fingerprint[k])
                raise InputError(
                    "holds a build with different "
                    f"{', '.join(differing) or 'settings'}; use --overwrite to replace it", path)
            return group, True
    try:
        group = zarr.open_group(str(path), mode="w-")
    except Exception as exc:
        raise InputError(f"cannot create store ({exc})", path) from None
    n_bursts = layout["n_bursts"]
    stats_shape = (n_bursts, layout["n_offsets"], layout["max_tiles"])
    for name in ("s_yr", "r_mean"):
        group.create_array(f"stats/{name}", shape=stats_shape, dtype="float32",
                           chunks=(1,) + stats_shape[1:], compressors=compressor(),
                           fill_value=np.nan)
    group.create_array("bursts/scored", shape=(n_bursts,), chunks=(1,), dtype="bool",
                       fill_value=False)
    group.attrs.update({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "status": "building",
        "fingerprint": fingerprint,
    })
    return group, False


def write_table(group: zarr.Group, name: str, values: np.ndarray, chunk: int | None = None):
    """A small array written at once by the driver (never by parallel tasks)."""
    values = np.asarray(values)
    chunks = values.shape if chunk is None else (chunk,) + values.shape[1:]
    chunks = tuple(max(1, c) for c in chunks)
    array = group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=chunks,
                               compressors=compressor(), overwrite=True)
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
                           chunks=(SAMPLE_CHUNK,) + shape[1:], compressors=compressor(),
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
