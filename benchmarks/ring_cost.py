"""What does a larger ring cost the validation targets? (issue 13, --validation-patch-size auto)

Times :func:`pcst_prep.matching.ring_match` on the first held-out burst of a grid case (the
clip's frames as ``clean_free.py`` writes them, the case's noise added) at the rings of
``RING_SIZES`` with a 3 x 3 hole, alternating, and prints the median of ``--runs`` runs
each and the larger ring's time as a ratio of the smaller's (the baseline, measured in the
same run). Run from the repository root after ``clean_free.py`` has written the clip's
frames: ``.venv/bin/python benchmarks/ring_cost.py --clips bikes bbb``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_free import config_for  # noqa: E402


def main():
    from pcst_prep.config import RING_SIZES
    from pcst_prep.matching import ring_match
    from pcst_prep.plan import plan_bursts
    from pcst_prep.stages import load_burst

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("runs/clean_free_grid"))
    parser.add_argument("--clips", nargs="+", default=["bikes", "bbb"])
    parser.add_argument("--noise", default="s25k1")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for clip in args.clips:
        config = config_for(args.noise, 15).replace(validation_patch_size=RING_SIZES[0],
                                                     validation_hole=3)
        burst = plan_bursts(args.source / clip / "frames", config).validation[0]
        noisy = load_burst(burst, config)[0]
        ring_match(noisy, burst.center, RING_SIZES[0], 3, config.search_radius)  # compiled
        times = {ring: [] for ring in RING_SIZES}
        for _ in range(args.runs):
            for ring in RING_SIZES:
                start = time.perf_counter()
                ring_match(noisy, burst.center, ring, 3, config.search_radius)
                times[ring].append(time.perf_counter() - start)
        small, large = (statistics.median(times[r]) for r in RING_SIZES)
        print(f"{clip} {args.noise}, one burst of {noisy.shape[0]} frames of "
              f"{noisy.shape[1]} x {noisy.shape[2]}: ring {RING_SIZES[0]} {small:.2f} s, ring "
              f"{RING_SIZES[1]} {large:.2f} s (medians of {args.runs}), ratio {large / small:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
