"""Reading sequences (videos or frame folders) and cutting them into bursts.

A *sequence* is a video file or a folder of frames. Frames come out as float32 arrays
``[H, W, C]`` with values in [0, 1] (C is 1 or 3; an alpha channel is dropped). 16-bit data
keeps its 16-bit precision: PNGs are decoded with ``imagecodecs`` (Pillow silently reduces
16-bit RGB PNGs to 8 bits), TIFFs with ``tifffile``, videos with imageio's pyav plugin.

This module is one of the two places that read from disk (and writes image files, for
``pcst-prep add-noise`` and ``pcst-train denoise``); everything downstream takes arrays.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv"})
IMAGE_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg"})


@dataclass(frozen=True)
class Sequence:
    """One input sequence: a video file or a folder of frames.

    Attributes
    ----------
    path : Path
        The video file or the frame folder.
    frames : tuple of Path
        The frame files in natural order (empty for a video).
    """

    path: Path
    frames: tuple[Path, ...] = ()

    @property
    def is_video(self) -> bool:
        return not self.frames

    def files(self, indices=None) -> list[Path]:
        """The files that hold the given frames (the video itself for a video)."""
        if self.is_video:
            return [self.path]
        return list(self.frames) if indices is None else [self.frames[i] for i in indices]


@dataclass(frozen=True)
class SequenceInfo:
    """Size of a sequence, known without decoding every frame."""

    n_frames: int
    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class Burst:
    """One burst: frame indices within its sequence and the position of its center frame.

    In a build a burst also knows where it comes from (plain data: it travels to workers):
    its ``index`` in the build, its ``sequence``, that sequence's ``source`` index in the
    store, and the frames' ``height`` and ``width``.
    """

    frame_indices: tuple[int, ...]
    center: int
    index: int = 0
    sequence: Sequence | None = None
    source: int = 0
    height: int = 0
    width: int = 0

    def read(self) -> np.ndarray:
        """float32 [M, H, W, C]: the burst's frames, read from its sequence."""
        return read_frames(self.sequence, self.frame_indices)


def natural_key(name: str) -> list:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def find_sequences(input_dir: str | os.PathLike) -> list[Sequence]:
    """Every sequence below ``input_dir``, in natural order of their paths.

    A video file (mp4, mov, avi, mkv) is a sequence; a folder that directly holds image files
    (png, tif, tiff, jpg, jpeg) is a sequence of those frames. ``input_dir`` may itself be a
    frame folder or a single video file. Hidden files and folders are ignored.

    Raises
    ------
    InputError
        If ``input_dir`` does not exist or holds no sequence.
    """
    root = Path(input_dir)
    if root.is_file():
        if root.suffix.lower() in VIDEO_SUFFIXES:
            return [Sequence(root)]
        raise InputError("not a video file (expected mp4, mov, avi or mkv)", root)
    if not root.is_dir():
        raise InputError("no such file or directory", root)
    sequences = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        folder = Path(folder)
        frames = _image_files(folder)
        if frames:
            sequences.append(Sequence(folder, tuple(frames)))
        for f in files:
            if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_SUFFIXES:
                sequences.append(Sequence(folder / f))
    if not sequences:
        raise InputError("holds no video file or folder of frames", root)
    return sorted(sequences, key=lambda s: natural_key(str(s.path.relative_to(root))))


# --- decoding ------------------------------------------------------------------------------


def _layout(array: np.ndarray, path: Path) -> np.ndarray:
    """[H, W, C] with C in {1, 3} (alpha dropped), in the file's own sample type."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"unsupported image layout {array.shape} (expected H x W x 1-4)", path)
    if array.shape[2] in (2, 4):  # gray+alpha, RGB+alpha
        array = array[:, :, :-1]
    if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"unsupported pixel type {array.dtype}", path)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise InputError("contains NaN or infinite values", path)
    return np.ascontiguousarray(array)


def as_float(array: np.ndarray) -> np.ndarray:
    """Samples as stored (uint8, uint16 or float32) to float32 in [0, 1]: 8-bit data divided
    by 255, 16-bit by 65535, floats as they are. The one conversion of every reader (the
    build, and the trainer reading frames from a store), so both get the same bits."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    return array.astype(np.float32, copy=False)


def _to_float(array: np.ndarray, path: Path) -> np.ndarray:
    """Scale to float32 in [0, 1] and drop alpha; result is [H, W, C] with C in {1, 3}."""
    return np.ascontiguousarray(as_float(_layout(array, path)))


def _decode(path: Path, data: bytes | None = None) -> np.ndarray:
    """The samples of one image file as stored (uint8, uint16 or float), [H, W] or [H, W, C];
    ``data``: its bytes, when already read."""
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
        raise InputError(f"unsupported image type {suffix!r}", path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read file ({exc.strerror})", path) from None
    try:
        if suffix in (".tif", ".tiff"):
            import io

            import tifffile

            return np.asarray(tifffile.imread(io.BytesIO(data)))
        import imagecodecs

        if suffix == ".png":
            return np.asarray(imagecodecs.png_decode(data))
        return np.asarray(imagecodecs.jpeg8_decode(data))
    except Exception as exc:  # decoders raise many types; the user needs the file and reason
        raise InputError(f"cannot decode image ({type(exc).__name__}: {exc})", path) from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to float32 ``[H, W, C]`` in [0, 1] (C is 1 or 3).

    Raises
    ------
    InputError
        If the file cannot be read or decoded, or holds NaN/inf.
    """
    path = Path(path)
    return _to_float(_decode(path), path)


def decode_image(data: bytes, path: Path) -> np.ndarray:
    """:func:`read_image` of bytes already read from ``path`` (which names the file in errors
    and gives its type by suffix)."""
    return _to_float(_decode(path, data), path)


def image_dtype(path: str | os.PathLike) -> np.dtype:
    """The sample type an image file stores (uint8, uint16 or a float type); used to write
    results back at the same bit depth.

    PNGs are decoded to learn it: header readers built on Pillow (``imageio.improps``) report
    16-bit RGB PNGs as uint8.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _decode(path).dtype
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                return np.dtype(tif.series[0].dtype)
        except Exception as exc:
            raise InputError(f"cannot read TIFF ({exc})", path) from None
    return np.dtype(np.uint8)


def to_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float [0, 1] -> the given sample type (integers are rounded and clipped)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        top = np.iinfo(dtype).max
        return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)
    return image.astype(dtype)


def write_image(path: str | os.PathLike, image: np.ndarray, dtype) -> None:
    """Write float [H, W, C] in [0, 1] as PNG/TIFF/JPEG with the given sample type (JPEG is
    always 8-bit), whole or not at all (a temporary file, then a rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        dtype = np.uint8
    data = to_dtype(image, dtype)
    data = np.ascontiguousarray(data[..., 0] if data.shape[-1] == 1 else data)
    if suffix == ".png":
        import imagecodecs

        encoded = imagecodecs.png_encode(data)
    elif suffix in (".tif", ".tiff"):
        import io

        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, data)
        encoded = buffer.getvalue()
    elif suffix in (".jpg", ".jpeg"):
        import imagecodecs

        encoded = imagecodecs.jpeg8_encode(data, level=95)
    else:
        raise InputError(f"unsupported output type {suffix!r} (png, tif, jpg)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")  # whole files only, even on a full disk
    try:
        tmp.write_bytes(encoded)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _channels_kept(shape) -> int:
    """Channels left of an image of ``shape`` once alpha is dropped (1 or 3)."""
    return 1 if len(shape) == 2 or shape[2] <= 2 else 3


def _probe_image(path: Path) -> tuple[int, int, int]:
    """(height, width, channels) of an image, from its header where that is cheap (Pillow's,
    through imageio, for PNG; tifffile's for TIFF)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        import imageio.v3 as iio

        try:
            with open(path, "rb") as f:
                signature = f.read(8)
        except OSError as exc:
            raise InputError(f"cannot read file ({exc.strerror})", path) from None
        if signature != b"\x89PNG\r\n\x1a\n":
            raise InputError("not a PNG file (no PNG signature)", path)
        try:
            shape = iio.improps(path, plugin="pillow").shape
        except Exception as exc:
            raise InputError(f"cannot read PNG header ({type(exc).__name__}: {exc})",
                             path) from None
        return shape[0], shape[1], _channels_kept(shape)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape
        except Exception as exc:
            raise InputError(f"cannot read TIFF ({exc})", path) from None
        if len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 2, 3, 4)):
            return shape[0], shape[1], _channels_kept(shape)
        raise InputError(f"unsupported image layout {tuple(shape)} (expected H x W x 1-4)", path)
    frame = read_image(path)
    return frame.shape  # type: ignore[return-value]


def _video_bits(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fmt = stream.codec_context.format
        return max(c.bits for c in fmt.components) if fmt is not None else 8


def probe_sequence(sequence: Sequence) -> SequenceInfo:
    """Number of frames and frame size, checking that every frame agrees.

    Frame folders are checked file by file from their headers (PNG, TIFF) so that a frame of
    another size or channel count is named before any work starts.

    Raises
    ------
    InputError
        Naming the offending file: unreadable, a size or channel count that differs from the
        first frame's.
    """
    if sequence.is_video:
        import imageio.v3 as iio

        try:
            props = iio.improps(sequence.path, plugin="pyav")
        except Exception as exc:
            raise InputError(f"cannot read video ({type(exc).__name__}: {exc})", sequence.path) from None
        n, h, w, c = props.shape
        if n <= 0:
            raise InputError("video has no frames", sequence.path)
        return SequenceInfo(int(n), int(h), int(w), int(c))
    first = _probe_image(sequence.frames[0])
    for frame in sequence.frames[1:]:
        shape = _probe_image(frame)
        if shape[:2] != first[:2]:
            raise InputError(
                f"frame is {shape[0]}x{shape[1]} but {sequence.frames[0].name} is "
                f"{first[0]}x{first[1]}: all frames of a sequence must have one size", frame)
        if shape[2] != first[2]:
            raise InputError(
                f"frame has {shape[2]} channel(s) but {sequence.frames[0].name} has {first[2]}: "
                "mixed channel counts in one sequence", frame)
    return SequenceInfo(len(sequence.frames), *first)


def read_frames(sequence: Sequence, indices, raw: bool = False) -> np.ndarray:
    """Decode the frames at ``indices`` (increasing) into float32 ``[len(indices), H, W, C]``
    in [0, 1], or with ``raw`` in the sample type of the input (uint8, uint16 or float32;
    :func:`as_float` converts them as this function would).

    Videos are opened once and decoded forward, which is cheap for the nearby, increasing
    indices of a burst. Videos with more than 8 bits per component are decoded at 16 bits.

    Raises
    ------
    InputError
        If a frame cannot be decoded or does not match the others in size, channels or sample
        type.
    """
    indices = [int(i) for i in indices]
    convert = _layout if raw else _to_float
    if sequence.is_video:
        frames = _read_video_frames(sequence.path, indices, convert)
        paths = [sequence.path] * len(indices)
    else:
        paths = [sequence.frames[i] for i in indices]
        frames = [convert(_decode(p), p) for p in paths]
    for frame, path in zip(frames[1:], paths[1:]):
        if frame.shape != frames[0].shape:
            raise InputError(
                f"frame has shape {frame.shape} but {paths[0].name} has {frames[0].shape}", path)
        if frame.dtype != frames[0].dtype:
            raise InputError(f"frame holds {frame.dtype} samples but {paths[0].name} holds "
                             f"{frames[0].dtype}: mixed bit depths in one sequence", path)
    return np.stack(frames)


def decode_check(sequence: Sequence, indices):
    """Decode the frames at ``indices`` one by one without keeping them; yields, per file,
    ``(path, bytes)`` once it decoded (bytes None for a video, which is streamed).

    Raises
    ------
    InputError
        Naming the first file that cannot be decoded (a truncated frame, NaN or inf values),
        or a video that ends before its header's frame count.
    """
    indices = sorted(int(i) for i in indices)
    if not sequence.is_video:
        shape = dtype = None
        for i in indices:
            path = sequence.frames[i]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read file ({exc.strerror})", path) from None
            frame = _layout(_decode(path, data), path)
            if shape is not None and frame.shape != shape:
                raise InputError(f"decodes to shape {frame.shape}, other frames to {shape}", path)
            if dtype is not None and frame.dtype != dtype:
                raise InputError(f"holds {frame.dtype} samples, other frames {dtype}: mixed "
                                 "bit depths in one sequence", path)
            shape, dtype = frame.shape, frame.dtype
            yield path, data
        return
    import imageio.v3 as iio

    path, last, decoded = sequence.path, max(indices, default=-1), 0
    try:
        for frame in iio.imiter(path, plugin="pyav"):
            _to_float(frame, path)
            decoded += 1
            if decoded > last:
                break
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot decode video frame {decoded} ({type(exc).__name__}: {exc})",
                         path) from None
    if decoded <= last:
        raise InputError(f"only {decoded} frames decode, but frame {last} is needed "
                         "(a truncated video?)", path)
    yield path, None


def _read_video_frames(path: Path, indices: list[int], convert=_to_float) -> list[np.ndarray]:
    import imageio.v3 as iio

    try:
        pixel_format = "rgb48le" if _video_bits(path) > 8 else "rgb24"
        with iio.imopen(path, "r", plugin="pyav") as video:
            return [convert(video.read(index=i, format=pixel_format), path) for i in indices]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot decode video ({type(exc).__name__}: {exc})", path) from None


def read_sequence(sequence: Sequence | str | os.PathLike) -> np.ndarray:
    """Every frame of a sequence as float32 ``[N, H, W, C]``; for small sequences and tests."""
    if not isinstance(sequence, Sequence):
        found = find_sequences(sequence)
        if len(found) != 1:
            raise InputError(f"holds {len(found)} sequences, expected one", sequence)
        sequence = found[0]
    info = probe_sequence(sequence)
    return read_frames(sequence, range(info.n_frames))


# --- bursts -------------------------------------------------------------------------------


def cut_bursts(
    n_frames: int,
    burst_length: int = 7,
    frame_step: int = 1,
    burst_stride: int | None = None,
    replicate: bool = False,
) -> list[Burst]:
    """Cut a sequence of ``n_frames`` frames into bursts.

    Parameters
    ----------
    n_frames : int
        Frames in the sequence.
    burst_length : int
        Frames per burst, M (odd).
    frame_step : int
        Take every ``frame_step``-th frame: a step above 1 decorrelates temporally correlated
        noise, at the cost of more motion between frames.
    burst_stride : int, optional
        Frames between the first frames of consecutive bursts. Default: the span of one burst,
        ``(burst_length - 1) * frame_step + 1``, so bursts do not overlap.
    replicate : bool
        If true, every frame of each burst serves once as the center (M bursts per span), as the
        reference implementation's "replicate" option does.

    Returns
    -------
    list of Burst
        Frame indices (into the sequence) and the center's position within them. Empty if the
        sequence is shorter than one burst.
    """
    if burst_length < 1 or burst_length % 2 == 0:
        raise InputError(f"burst_length must be a positive odd number, got {burst_length}")
    if frame_step < 1:
        raise InputError(f"frame_step must be at least 1, got {frame_step}")
    span = (burst_length - 1) * frame_step + 1
    stride = span if burst_stride is None else burst_stride
    if stride < 1:
        raise InputError(f"burst_stride must be at least 1, got {stride}")
    centers = range(burst_length) if replicate else (burst_length // 2,)
    bursts = []
    for start in range(0, n_frames - span + 1, stride):
        frames = tuple(range(start, start + span, frame_step))
        bursts.extend(Burst(frames, c) for c in centers)
    return bursts
