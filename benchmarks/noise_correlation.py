"""How well does ``pcst-prep tune`` measure the noise's correlation length, which sets the
hole of the ring validation targets (``--validation-hole auto``)? (issue 13)

For each clip and noise of the clean-free grid: tune's residual r = t - y at p 45 on the
bursts tune samples (3, spread over the input), its correlation at lags 1 to 6 by tune's
estimator (the median over 25 x 25 blocks, the larger axis), pooled over the whole frame (the
estimator before 2026-11-26), and the truth: the correlation of the noise that was added
(noisy - clean on the same centre frames, pooled: no content there). Prints a markdown table
with the hole each would choose; clean frames are read only to measure.

Run from the repository root: ``.venv/bin/python benchmarks/noise_correlation.py``
(``--clips``, ``--noises``; the frames come from ``clean_free.py``'s folder, ``--source``,
written here if missing). About 5 s a case on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_free import GRID, NOISES, config_for  # noqa: E402
from quality import SEGMENT_LENGTH, clip_frames, write_training_frames  # noqa: E402

CASES = ["s5k1", "s10k2", "s15k2", "s20k3", "s25k4", "s15k4", "camera-weak", "camera",
         "camera-strong"]


def measure(frames_dir: Path, noise: str) -> dict:
    """The three correlations (lists over the lags) and the bursts used."""
    from pcst_prep.plan import plan_bursts
    from pcst_prep.stages import load_burst
    from pcst_prep.tune import (CANDIDATES, _sample, block_correlations, noise_correlation,
                                residual)

    config = config_for(noise, max(CANDIDATES)).replace(search="dense")
    plan = plan_bursts(frames_dir, config, False)
    estimated, pooled, truth = [], [], []
    for burst in _sample(plan.bursts, 3):
        noisy, clean = load_burst(burst, config)
        r = residual(noisy, burst.center, config)
        estimated.append(block_correlations(r))
        pooled.append(block_correlations(r, block=min(r.shape)))
        n = (noisy[burst.center] - clean[burst.center]).mean(axis=-1)
        truth.append(block_correlations(n, block=min(n.shape)))
    return {"tune": noise_correlation(np.concatenate(estimated)),
            "pooled": noise_correlation(np.concatenate(pooled)),
            "truth": noise_correlation(np.concatenate(truth))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("runs/clean_free_grid"))
    parser.add_argument("--clips", nargs="+", default=["bbb", "bikes"])
    parser.add_argument("--noises", nargs="+", default=CASES,
                        help=f"any of {', '.join(NOISES)}, or 'grid' for {' '.join(GRID)}")
    args = parser.parse_args()
    if args.noises == ["grid"]:
        args.noises = GRID
    from pcst_prep.tune import HOLE_CORRELATION, recommend_hole

    started = time.perf_counter()
    lines = ["| clip | noise | truth, lags 1-6 | tune (block median) | pooled (before) | "
             "hole: truth / tune / pooled |", "| --- | --- | --- | --- | --- | --- |"]
    worst = {"tune": 0.0, "pooled": 0.0}
    for clip in args.clips:
        frames_dir = write_training_frames(clip_frames(clip), args.source / clip / "frames",
                                           length=SEGMENT_LENGTH)
        for noise in args.noises:
            found = measure(frames_dir, noise)
            for name in worst:
                worst[name] = max(worst[name], *(abs(a - b) for a, b in
                                                 zip(found[name], found["truth"])))
            cells = [" ".join(f"{v:.2f}" for v in found[k]) for k in ("truth", "tune", "pooled")]
            holes = " / ".join(str(recommend_hole(found[k], window=15))
                               for k in ("truth", "tune", "pooled"))
            lines.append(f"| {clip} | {noise} | " + " | ".join(cells) + f" | {holes} |")
            print(lines[-1], flush=True)
    print("\n".join(["", *lines, "",
                     f"largest error at any lag: tune {worst['tune']:.2f}, pooled "
                     f"{worst['pooled']:.2f}; hole threshold {HOLE_CORRELATION:g}; "
                     f"{time.perf_counter() - started:.0f} s"]))


if __name__ == "__main__":
    main()
