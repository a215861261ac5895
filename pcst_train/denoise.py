"""Denoising images, frame folders and videos with a trained model, tile by tile.

Frames larger than a tile are cut into overlapping tiles; each tile is denoised with a margin
of ``overlap`` pixels of context on every side, and only its center is kept, so the seams see
the same context as the interior. Images and frame folders keep the input's bit depth
(16-bit in, 16-bit out); a video becomes 16-bit PNG frames, or an 8-bit H.264 video where the
output's name says so.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from pcst_prep.bursts import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, as_float, decode_check,
                              find_sequences, image_dtype, probe_sequence, read_frames,
                              read_image, to_dtype, write_image)
from pcst_prep.errors import InputError

from .models import fit_channels


VIDEO_FPS = 25  # frame rate of a written video whose source does not state its own
# x264's constant rate factor for written videos (lower: closer to the frames, larger files):
# on bikes at 136 x 320, 39.7 dB PSNR against the frames it is given, where x264's default
# (23) gives 37.2 dB at half the size (benchmarks/video_output.py).
VIDEO_CRF = 17


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


def for_channels(model, channels: int, path, say=None):
    """The model for images of ``channels`` channels: itself, or an RGB model's grayscale copy
    (:func:`pcst_train.models.as_grayscale`, told to ``say`` where given); any other mismatch
    is refused."""
    expected = getattr(model, "channels", channels)
    if expected == channels:
        return model
    fitted = fit_channels(model, channels)
    if fitted is None:
        kind = {1: "grayscale", 3: "RGB"}
        raise InputError(f"has {channels} channel(s) ({kind.get(channels, '?')}) but the model "
                         f"denoises {expected}-channel ({kind.get(expected, '?')}) images; use a "
                         f"model trained on {kind.get(channels, f'{channels}-channel')} data",
                         path)
    if say is not None:
        say(f"{path}: grayscale, denoised by the RGB model's grayscale copy (the model on the "
            "grey frame in every channel, its outputs averaged)")
    return fitted


def _sequence(source: Path):
    """The one sequence that a video file or a frame folder ``source`` is."""
    if source.is_file():
        sequences = find_sequences(source)
    else:
        sequences = [s for s in find_sequences(source) if s.path == source]
    if not sequences:
        raise InputError("is neither an image, a frame folder nor a video", source)
    return sequences[0]


def read_frame(source, index: int) -> tuple[np.ndarray, np.dtype, str]:
    """Frame ``index`` of a video or a frame folder (0-based, in file order, as ``pcst-prep
    info`` lists a store's held-out frames): the float32 image [H, W, C], the sample type to
    write its result in (a folder's frame's own; 16 bits for a video, whose frames
    :func:`denoise_path` writes as 16-bit PNGs too), and a file name for it (the frame's own,
    or ``<video stem>_<index>.png``)."""
    source = Path(source)
    sequence = _sequence(source)
    n_frames = probe_sequence(sequence).n_frames
    if not 0 <= index < n_frames:
        raise InputError(f"has {n_frames} frames (0 to {n_frames - 1}), no frame {index}",
                         source)
    raw = read_frames(sequence, [index], raw=True)[0]
    if sequence.is_video:
        return as_float(raw), np.dtype(np.uint16), f"{source.stem}_{index:06d}.png"
    return as_float(raw), raw.dtype, sequence.frames[index].name


def denoise_image(model, source, destination, tile: int = 256, overlap: int = 32,
                  device="cpu", say=None, frame: int | None = None
                  ) -> tuple[Path, np.ndarray, np.ndarray]:
    """Denoise one image file (or, with ``frame``, that frame of a video or frame folder:
    :func:`read_frame`) into ``destination`` (a file, or a folder to put it in), at the
    source's bit depth. Returns (the file written, the noisy and the denoised image as float32
    [H, W, C]; the denoised one not clipped)."""
    source, destination = Path(source), Path(destination)
    if frame is None:
        noisy, dtype, name = read_image(source), image_dtype(source), source.name
    else:
        noisy, dtype, name = read_frame(source, frame)
    out = destination if destination.suffix else destination / name
    model = for_channels(model, noisy.shape[2], source, say)
    denoised = denoise_array(model, noisy, tile, overlap, device)
    write_image(out, denoised, dtype)
    return out, noisy, denoised


def write_comparison(path, panels: list[tuple[str, np.ndarray]]) -> Path:
    """A PNG of float [H, W, C] images of one size side by side, each under its title, at
    their own resolution (one image pixel per PNG pixel; values clipped to [0, 1])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = panels[0][1].shape[:2]
    gap, band, dpi = 8, 24, 100  # pixels between panels, pixels of title band
    total_width = len(panels) * width + (len(panels) - 1) * gap
    total_height = height + band
    fig = plt.figure(figsize=(total_width / dpi, total_height / dpi), dpi=dpi)
    for i, (title, image) in enumerate(panels):
        left = i * (width + gap)
        ax = fig.add_axes((left / total_width, 0, width / total_width, height / total_height))
        image = np.clip(image, 0.0, 1.0)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0,
                  vmax=1, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        fig.text((left + width / 2) / total_width, 1 - band / 2 / total_height, title,
                 ha="center", va="center", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def denoise_path(model, source, destination, tile: int = 256, overlap: int = 32,
                 device="cpu", progress=None, say=None) -> list[Path]:
    """Denoise an image file, a folder of frames or a video into ``destination``.

    - image -> image file (same format unless ``destination`` has another suffix);
    - frame folder -> folder of the same file names;
    - video -> a folder of 16-bit PNG frames (lossless), or, where ``destination`` ends in a
      video suffix, an 8-bit H.264 video (lossy) at the source's frame rate.
    """
    source, destination = Path(source), Path(destination)
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        return [denoise_image(model, source, destination, tile, overlap, device, say)[0]]
    sequence = _sequence(source)
    info = probe_sequence(sequence)
    model = for_channels(model, info.channels, sequence.path, say)
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
        import av
        import imageio.v3 as iio

        if info.height % 2 or info.width % 2:
            raise InputError(f"is {info.height}x{info.width}: an H.264 video needs an even "
                             "height and width; denoise it into a folder of PNG frames instead",
                             source)
        fps = iio.immeta(sequence.path, plugin="pyav").get("fps") or VIDEO_FPS
        destination.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(destination), "w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(65535))
            stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
            stream.options = {"crf": str(VIDEO_CRF)}
            for i in frames:
                frame = denoise_array(model, read_frames(sequence, [i])[0], tile, overlap, device)
                picture = av.VideoFrame.from_ndarray(to_dtype(frame, np.uint8), format="rgb24")
                container.mux(stream.encode(picture))
            container.mux(stream.encode())  # what the encoder still holds
        return [destination]
    for i in frames:
        frame = denoise_array(model, read_frames(sequence, [i])[0], tile, overlap, device)
        out = destination / f"{i:06d}.png"
        write_image(out, frame, np.uint16)
        written.append(out)
    return written
