"""Peak memory of one worker scoring one 1920 x 1080 burst at the paper-synthetic setting.

Stage 1 of the build is the memory-hungry one: it holds the noisy burst, its mirror-extended
copy and the guarded planes of the other frames, the kernel's per-thread best-match arrays, the nnf, and the scores of every
(offset, tile) pair. Nothing proportional to p^2 full frames is ever held: targets are never
built in stage 1 (scores are read straight from the matches), and stage 3 crafts one tile at a
time. This benchmark runs stage 1's work (read-free: a real frame upscaled to 1080p, noise, match,
score) in a fresh process and reports its peak resident memory against an estimate from the
array sizes, and against the baseline of the same process before the work (interpreter, NumPy,
Numba and its compiled kernels).

Run: ``.venv/bin/python benchmarks/bench_memory.py``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

MIB = 2 ** 20


def estimate(h, w, c=3, m=7, p=43, radius=37, n_threads=2, tile=50, stride=30) -> dict:
    """Bytes of the arrays stage 1 holds at its peak (float32 unless noted)."""
    he, we = h + 2 * (p - 1), w + 2 * (p - 1)
    n_i, n_j = (h - tile) // stride + 1, (w - tile) // stride + 1
    rows, cols = he - p + 1, we - p + 1
    parts = {
        "burst (noisy)": m * h * w * c * 4,
        "extended burst": m * he * we * c * 4,
        "guarded planes of the other frames": (m - 1) * c * he * (we + 2 * radius) * 4,
        "per-chunk best distance + index": n_threads * rows * cols * (4 + 6),
        "nnf + distance (result)": rows * cols * (6 + 4),
        "scores (2 x p^2 x tiles, float64)": 2 * p * p * n_i * n_j * 8,
    }
    return parts


def child(h: int, w: int) -> dict:
    """Runs in a fresh process: the work, and the peak RSS before and after it."""
    from pcst_prep.matching import extend_frames, match_patches
    from pcst_prep.noise import CorrelatedGaussian
    from pcst_prep.statistics import offset_tile_stats
    from pcst_prep.targets import all_offsets

    # compile (cached) on a small burst first, so the baseline includes the compiled kernels
    small = np.random.default_rng(0).random((7, 60, 60, 3), dtype=np.float32)
    nnf, _ = match_patches(small, 3, 43, 37)
    offset_tile_stats(extend_frames(small, 43), 3, nnf, 43, all_offsets(43), 50, 30)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    from common import real_burst

    clean = real_burst(n_frames=7, scale=1, start=30)[0]          # 720 x 1280, real frames
    rows = (np.arange(h) * clean.shape[1] // h)[:, None]
    cols = (np.arange(w) * clean.shape[2] // w)[None, :]
    clean = np.ascontiguousarray(clean[:, rows, cols])            # nearest upscale to h x w
    noisy = CorrelatedGaussian(20, 3)(clean, np.random.default_rng(1))
    del clean  # as in the build: only the noisy burst is kept while matching and scoring
    start = time.perf_counter()
    nnf, _ = match_patches(noisy, 3, 43, 37)
    t_match = time.perf_counter() - start
    start = time.perf_counter()
    offset_tile_stats(extend_frames(noisy, 43), 3, nnf, 43, all_offsets(43), 50, 30)
    t_score = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"baseline": baseline, "peak": peak, "match_s": t_match, "score_s": t_score}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(1080, 1920), metavar=("H", "W"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    h, w = args.size
    if args.child:
        print(json.dumps(child(h, w)))
        return
    import numba

    out = subprocess.run([sys.executable, __file__, "--child", "--size", str(h), str(w)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    parts = estimate(h, w, n_threads=numba.config.NUMBA_NUM_THREADS)
    total = sum(parts.values())
    print(f"one {h}x{w} 7-frame RGB burst, p 43, R 37, tiles 50/30, "
          f"{numba.config.NUMBA_NUM_THREADS} Numba threads")
    for name, size in parts.items():
        print(f"  {name:38s} {size / MIB:8.0f} MiB")
    print(f"  {'estimate, all at once':38s} {total / MIB:8.0f} MiB")
    work = result["peak"] - result["baseline"]
    print(f"peak RSS {result['peak'] / MIB:.0f} MiB = baseline {result['baseline'] / MIB:.0f} MiB "
          f"(Python, NumPy, Numba, compiled kernels) + {work / MIB:.0f} MiB for the work "
          f"({work / total:.2f}x the estimate); matching {result['match_s']:.1f} s, scoring "
          f"{result['score_s']:.1f} s")


if __name__ == "__main__":
    main()
