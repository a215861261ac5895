"""The gap to supervised training (issue 13, part 4): per case of the clean-free experiment,
patch-craft training against the same training on the store's clean tiles (N2C), at equal
steps, both from the shipped UNet, at the p that ``pcst-prep tune`` chose.

Run after ``benchmarks/clean_free.py --out OUT`` (it reuses OUT's stores, runs and
results.csv): ``.venv/bin/python benchmarks/n2c_gap.py --out runs/clean_free_v2``.
PSNR is measured on the held-out tiles' clean versions (``val_psnr``), never used to choose.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path


def final_psnr(run: Path) -> float:
    with open(run / "log.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["val_psnr"]]
    return float(rows[-1]["val_psnr"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/clean_free"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-4)
    args = parser.parse_args()
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    with open(args.out / "results.csv") as f:
        cases = list(csv.DictReader(f))
    lines = ["| clip | noise | p (tune's) | patch-craft | N2C | gap |",
             "| --- | --- | --- | --- | --- | --- |"]
    started = time.perf_counter()
    for case in cases:
        folder = args.out / case["clip"] / case["noise"]
        p = int(case["tune_p"])
        n2c = folder / f"run_n2c_p{p}"
        if not (n2c / "final.pt").exists():
            train(folder / f"p{p}.zarr", n2c,
                  TrainConfig(steps=args.steps, lr=args.lr, batch_size=16, seed=0,
                              validate_every=args.every, clean_targets=True), progress=False)
        pc, sup = final_psnr(folder / f"run_p{p}"), final_psnr(n2c)
        lines.append(f"| {case['clip']} | {case['noise']} | {p} | {pc:.2f} | {sup:.2f} | "
                     f"{sup - pc:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    (args.out / "n2c_gap.md").write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
