"""Denoising images, frame folders and videos with a trained model, tile by tile.

Frames larger than a tile are cut into overlapping tiles; each tile is denoised with a margin
of ``overlap`` pixels of context on every side, and only its center is kept, so the seams see
the same context as the interior. Output keeps the input's bit depth: 16-bit in, 16-bit out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pcst_prep.bursts import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, decode_check, find_sequences,
                              image_dtype, probe_sequence, read_frames, read_image)
from pcst_prep.errors import InputError


def check_tiling(tile: int, overlap: int):
    """A tile must keep a center after its two context margins are taken off."""
    if overlap < 0 or tile <= 2 * overlap:
        raise InputError(f"--tile ({tile}) must be larger than twice --overlap ({overlap}), "
                         "and --overlap >= 0")


@torch.no_grad()
def denoise_array(model, image: np.ndarray, tile: int = 256, overlap: int = 32,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Denoise one float32 image [H, W, C] in tiles of ``tile`` with ``overlap`` context.

    Returns float32 [H, W, C] (not clipped).
    """
    check_tiling(tile, overlap)
    model.eval()
    height, width, _ = image.shape
    core = tile - 2 * overlap
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    out = torch.empty_like(x)
    for top in range(0, height, core):
        for left in range(0, width, core):
            bottom, right = min(top + core, height), min(left + core, width)
            a, b = max(0, top - overlap), min(height, bottom + overlap)
            c, d = max(0, left - overlap), min(width, right + overlap)
            piece = model(x[..., a:b, c:d].to(device)).cpu()
            out[..., top:bottom, left:right] = piece[..., top - a:bottom - a, left - c:right - c]
    return out[0].numpy().transpose(1, 2, 0)


def to_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float [0, 1] -> the given sample type (integers are rounded and clipped)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        top = np.iinfo(dtype).max
        return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)
    return image.astype(dtype)


def write_image(path: Path, image: np.ndarray, dtype) -> None:
    """Write float [H, W, C] in [0, 1] as PNG/TIFF/JPEG with the given sample type (JPEG is
    always 8-bit)."""
    import imagecodecs
    import tifffile

    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        dtype = np.uint8
    data = to_dtype(image, dtype)
    data = np.ascontiguousarray(data[..., 0] if data.shape[-1] == 1 else data)
    if suffix == ".png":
        encoded = imagecodecs.png_encode(data)
    elif suffix in (".tif", ".tiff"):
        import io

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, data)
        encoded = buffer.getvalue()
    elif suffix in (".jpg", ".jpeg"):
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


def check_channels(model, channels: int, path) -> None:
    """A model denoises images of its own channel count only."""
    expected = getattr(model, "channels", channels)
    if expected != channels:
        kind = {1: "grayscale", 3: "RGB"}
        raise InputError(f"has {channels} channel(s) ({kind.get(channels, '?')}) but the model "
                         f"denoises {expected}-channel ({kind.get(expected, '?')}) images; use a "
                         f"model trained on {kind.get(channels, f'{channels}-channel')} data",
                         path)


def denoise_path(model, source, destination, tile: int = 256, overlap: int = 32,
                 device="cpu", progress=None) -> list[Path]:
    """Denoise an image file, a folder of frames or a video into ``destination``.

    - image -> image file (same format unless ``destination`` has another suffix);
    - frame folder -> folder of the same file names;
    - video -> a video file if ``destination`` ends in a video suffix, else a folder of
      16-bit PNG frames (lossless).
    """
    source, destination = Path(source), Path(destination)
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        out = destination if destination.suffix else destination / source.name
        image = read_image(source)
        check_channels(model, image.shape[2], source)
        write_image(out, denoise_array(model, image, tile, overlap, device),
                    image_dtype(source))
        return [out]
    if source.is_file():
        sequences = find_sequences(source)
    else:
        sequences = [s for s in find_sequences(source) if s.path == source]
    if not sequences:
        raise InputError("is neither an image, a frame folder nor a video", source)
    sequence = sequences[0]
    info = probe_sequence(sequence)
    check_channels(model, info.channels, sequence.path)
    written = []
    if not sequence.is_video:  # every frame decodes before the first is written
        for _ in decode_check(sequence, range(len(sequence.frames))):
            pass
        for frame in (progress or (lambda x: x))(sequence.frames):
            out = destination / frame.name
            write_image(out, denoise_array(model, read_image(frame), tile, overlap, device),
                        image_dtype(frame))
            written.append(out)
        return written
    frames = (progress or (lambda x: x))(range(info.n_frames))
    if destination.suffix.lower() in VIDEO_SUFFIXES:
        import imageio.v3 as iio

        destination.parent.mkdir(parents=True, exist_ok=True)
        with iio.imopen(destination, "w", plugin="pyav") as video:
            video.init_video_stream("libx264", fps=25)
            for i in frames:
                frame = denoise_array(model, read_frames(sequence, [i])[0], tile, overlap, device)
                video.write_frame(to_dtype(frame, np.uint8))
        return [destination]
    for i in frames:
        frame = denoise_array(model, read_frames(sequence, [i])[0], tile, overlap, device)
        out = destination / f"{i:06d}.png"
        write_image(out, frame, np.uint16)
        written.append(out)
    return written
