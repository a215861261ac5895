"""The clean-free experiment (``make benchmark-clean-free``): does the validation loss rank
models like their true PSNR, and does ``pcst-prep tune`` choose a good p?

For each clip and noise: the clip's 8 segments of 14 frames become 8 sequences of 16-bit
PNGs; stores are built with the noise added, one per patch size p of a sweep, each holding
out the same 2 sequences (25%) for validation (ring targets with the ring and hole that
``--validation-patch-size auto --validation-hole auto`` measure, as the ``real`` pipeline's
builds; computed in the first store and copied into the others, as ``pcst-prep build
--validation-from`` does, so every store of a case has the same held-out tiles and targets);
the shipped UNet is adapted on each store for
the same steps, validated every ``--every`` steps. The validation loss (clean-free) and the
PSNR on the held-out tiles' clean versions (measured only) are read from each run's log.

Reports, per case: the PSNR of each p; the p with the lowest validation loss; the p that tune
chose; the p of the reference's table; and the Spearman rank correlation between the
validation loss and the PSNR over every (run, step) validation of the case.

``--trial`` then settles, as a user would, the cases where tune's evidence is weak
(:func:`pcst_prep.tune.weak_evidence`: its p is only the largest candidate's default, or the
noise fit does not fall as p grows): ``pcst-train trial`` on the stores at tune's p and at the
candidate that tune names (the sweep's stores, so no new build), the store with the lower
validation loss chosen; it reports the choice, both trial runs' PSNR (measured only) and the
cost (``trial.csv`` and ``trial.md`` in OUT).

``--summary`` joins what the three steps of ``make benchmark-clean-free`` left in OUT
(``results.csv``, ``trial.csv``, each case's N2C run of ``benchmarks/n2c_gap.py``) into the
issue's three figures per case: the p used (tune's, or the trial's where tune's evidence is
weak) and its PSNR below the sweep's best; the Spearman of the validation loss; the gap to
N2C at tune's p; and how many cases meet each goal (``summary.md`` in OUT).

``--rescore`` judges each case's kept models (every validation of its sweep's runs) again
with the validation loss that ``pcst-train`` computes today at its defaults (on the held-out
tiles of the case's first store, which every store of the case shares): the Spearman of the
logged loss and of today's against the PSNR that the runs logged on those tiles
(``rescored.csv`` in OUT; ``--summary`` takes today's figure where a case has one). The
models do not depend on the validation loss (it chooses best.pt, never the weights), so this
is what a rerun of the sweep would log (for runs made with today's code, the logged loss
itself: ``make benchmark-clean-free`` rescores before its summary, so that runs made before
a change of the loss are judged as new ones).

``--tune-only`` runs tune alone on every case (no build, no training): its p and its estimate
of the noise's standard deviation beside the true one (the correlated Gaussian noises'
sigma; the camera model has none), in ``tune_only.csv`` and ``tune_only.md`` of OUT.

Run from the repository root: ``.venv/bin/python benchmarks/clean_free.py --out
runs/clean_free``; finished stores and runs are reused whatever settings built them (a
store's ``.done`` marker, a run's ``final.pt``): after a change to :func:`config_for` or to
the build, move a case's folder aside to measure it again.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import SEGMENT_LENGTH, clip_frames, write_training_frames  # noqa: E402

# The reference implementation's hand-tuned p (demo_train_for_correlated_gaussian.py): sigma
# 5 to 20 with box kernels 2 to 4; it has no entry for i.i.d. noise (k 1), sigma 25 or a camera.
REFERENCE_P = {(5, 2): 19, (5, 3): 19, (5, 4): 25, (10, 2): 27, (10, 3): 37, (10, 4): 43,
               (15, 2): 31, (15, 3): 41, (15, 4): 43, (20, 2): 33, (20, 3): 43, (20, 4): 45}
NOISES = {  # name: (noise model, parameters, the reference table's p where it has one)
    **{f"s{s}k{k}": ("correlated-gaussian", {"sigma": float(s), "kernel_size": k},
                     REFERENCE_P.get((s, k)))
       for s in (5, 10, 15, 20, 25) for k in (1, 2, 3, 4)},
    "camera": ("camera", {"shot": 0.006, "read": 0.006}, None),
    "camera-weak": ("camera", {"shot": 0.0015, "read": 0.003}, None),
    "camera-strong": ("camera", {"shot": 0.024, "read": 0.012}, None),
}
DEFAULT_NOISES = ["s10k2", "s20k3", "camera"]
# The wider grid of issue 13: sigma 5, 15, 25 by box kernels 1, 2, 4, the two noises above,
# and the camera model at a weak, the default and a strong setting.
GRID = [f"s{s}k{k}" for s in (5, 15, 25) for k in (1, 2, 4)] + [
    "s10k2", "s20k3", "camera-weak", "camera", "camera-strong"]
SWEEP = (15, 25, 35, 45)


def config_for(noise: str, p: int, seed: int = 0):
    from pcst_prep.config import load_pipeline

    model, params, _ = NOISES[noise]
    # the ring validation targets as the real pipeline chooses them: the hole from the noise's
    # correlation (5 x 5 on box kernels of 4, 3 x 3 on every other noise of the grid), the ring
    # from its level (25 where tune reads sigma 18 or more: sigma 20 and 25, camera-strong)
    return load_pipeline("paper-synthetic", noise=model, noise_params=params, patch_size=p,
                         tile_stride=20, holdout=0.25, seed=seed, validation_hole="auto",
                         validation_patch_size="auto")


def build_store(frames_dir: Path, store: Path, config, validation_from: Path | None = None):
    """Build ``store`` unless a finished one is there; ``validation_from``: copy its held-out
    tiles (``pcst-prep build --validation-from``: the same tiles and targets, whatever p)."""
    from pcst_prep.build import build

    if (store / "zarr.json").exists() and (store.parent / f"{store.name}.done").exists():
        return
    build(frames_dir, store, config, progress=False, overwrite=True,
          validation_from=validation_from)
    (store.parent / f"{store.name}.done").touch()


def train_run(store: Path, out: Path, steps: int, every: int, lr: float,
              pixel_filter: float = 2.0, loss: str = "mae") -> list[dict]:
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    if not (out / "final.pt").exists():
        train(store, out, TrainConfig(steps=steps, lr=lr, batch_size=16, seed=0,
                                      validate_every=every, keep_validated=True,
                                      pixel_filter=pixel_filter, loss=loss),
              progress=False)
    with open(out / "log.csv") as f:
        return [r for r in csv.DictReader(f) if r["val_loss"]]


def spearman(a, b) -> float:
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731  (no ties in real figures)
    return float(np.corrcoef(ranks(np.asarray(a)), ranks(np.asarray(b)))[0, 1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/clean_free"))
    parser.add_argument("--clips", nargs="+", default=["bbb", "bikes"])
    parser.add_argument("--noises", nargs="+", default=DEFAULT_NOISES,
                        help=f"noises by name, or 'grid' for {' '.join(GRID)}; any of "
                             f"{', '.join(NOISES)}")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--pixel-filter", type=float, default=2.0,
                        help="pcst-train --pixel-filter (0 with --loss mse: the plain MSE that "
                        "every figure measured before 2026-11-26 used).")
    parser.add_argument("--loss", choices=("mae", "mse"), default="mae",
                        help="pcst-train --loss, and the validation loss with it (mse: the "
                        "squared error that every figure measured before 2026-11-27 used).")
    parser.add_argument("--trial", action="store_true",
                        help="Settle the cases of OUT's results where tune's evidence is weak "
                        "by pcst-train trial (see the module docstring) and stop.")
    parser.add_argument("--tune-only", action="store_true",
                        help="Run tune alone on every case: its p and noise estimate (see the "
                        "module docstring), and stop.")
    parser.add_argument("--rescore", action="store_true",
                        help="Judge the kept models of OUT's cases again with today's "
                        "validation loss (see the module docstring), and stop.")
    parser.add_argument("--summary", action="store_true",
                        help="Join OUT's results, trial and N2C runs into the issue's three "
                        "figures per case and their tallies (see the module docstring), and "
                        "stop.")
    args = parser.parse_args()
    if args.noises == ["grid"]:
        args.noises = GRID
    unknown = [n for n in args.noises if n not in NOISES]
    if unknown:
        parser.error(f"unknown noise {unknown[0]!r}: choose from {', '.join(NOISES)} or grid")
    if args.trial:
        return settle_by_trial(args)
    if args.tune_only:
        return tune_only(args)
    if args.rescore:
        return rescore(args)
    if args.summary:
        return summary(args)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.perf_counter()
    for clip, noise, frames_dir, report, t0 in tuned_cases(args):
        tune_seconds = time.perf_counter() - t0
        case = args.out / clip / noise
        case.mkdir(parents=True, exist_ok=True)
        validations, per_p = [], {}
        for p in SWEEP:
            store = case / f"p{p}.zarr"
            # the held-out tiles are the same for every p: computed once, at the first p
            build_store(frames_dir, store, config_for(noise, p),
                        None if p == SWEEP[0] else case / f"p{SWEEP[0]}.zarr")
            log = train_run(store, case / f"run_p{p}", args.steps, args.every, args.lr,
                            args.pixel_filter, args.loss)
            validations += [(float(r["val_loss"]), float(r["val_psnr"])) for r in log]
            best = min(log, key=lambda r: float(r["val_loss"]))
            per_p[p] = {"psnr": float(log[-1]["val_psnr"]),
                        "psnr_before": float(log[0]["val_psnr"]),
                        "val_loss": float(log[-1]["val_loss"]),
                        "best_val_loss": float(best["val_loss"]),
                        "best_psnr": float(best["val_psnr"])}
        losses, psnrs = zip(*validations)
        by_loss = min(per_p, key=lambda p: per_p[p]["best_val_loss"])
        best_p = max(per_p, key=lambda p: per_p[p]["psnr"])
        row = {"clip": clip, "noise": noise, "reference_p": NOISES[noise][2],
               "tune_p": report.patch_size, "val_loss_p": by_loss, "best_p": best_p,
               "tune_gap_db": round(per_p[best_p]["psnr"] -
                                    per_p.get(report.patch_size, {"psnr": np.nan})["psnr"], 3),
               "spearman": round(spearman(losses, [-v for v in psnrs]), 3),
               "n_validations": len(validations), "noise_sigma": round(report.noise_sigma, 2),
               "noise_fit": json.dumps({c.patch_size: round(c.noise_fit, 3)
                                        for c in report.candidates}),
               "tune_seconds": round(tune_seconds, 1),
               **{f"psnr_p{p}": round(per_p[p]["psnr"], 3) for p in SWEEP},
               "psnr_before": round(per_p[SWEEP[0]]["psnr_before"], 3),
               "case_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        write_results(args.out, rows)  # after every case: an interrupted run keeps them
    print(markdown(rows))
    print(f"total {time.perf_counter() - started:.0f} s on {platform.processor() or 'cpu'}, "
          f"{platform.python_version()}", flush=True)


def tuned_cases(args):
    """Every case of ``args`` (clip by noise), tuned: (clip, noise, the clip's frames folder,
    tune's report, the ``time.perf_counter()`` at which tuning started)."""
    from pcst_prep.tune import tune

    for clip in args.clips:
        frames_dir = write_training_frames(clip_frames(clip), args.out / clip / "frames",
                                           length=SEGMENT_LENGTH)
        for noise in args.noises:
            t0 = time.perf_counter()
            yield clip, noise, frames_dir, tune(frames_dir, config_for(noise, SWEEP[0])), t0


def tune_only(args) -> None:
    """``--tune-only``: tune on every case, its p and sigma against the true sigma."""
    args.out.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.perf_counter()
    for clip, noise, _, report, t0 in tuned_cases(args):
        model, params, _ = NOISES[noise]
        true = params.get("sigma")
        rows.append({"clip": clip, "noise": noise, "tune_p": report.patch_size,
                     "sigma": true, "tune_sigma": round(report.noise_sigma, 2),
                     "error": None if true is None else round(report.noise_sigma - true, 2),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    with open(args.out / "tune_only.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    errors = [abs(r["error"]) for r in rows if r["error"] is not None]
    lines = ["| clip | noise | tune's p | sigma | tune's sigma |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['clip']} | {r['noise']} | {r['tune_p']} | "
              f"{'-' if r['sigma'] is None else format(r['sigma'], 'g')} | {r['tune_sigma']} |"
              for r in rows]
    text = "\n".join(lines) + (f"\n\nlargest error of tune's sigma: {max(errors):.2f} over "
                               f"{len(errors)} Gaussian cases\n" if errors else "\n")
    (args.out / "tune_only.md").write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s", flush=True)


def settle_by_trial(args) -> None:
    """``--trial``: pcst-train trial between tune's p and the candidate it names where its
    evidence is weak; the trainings are the sweep's (--steps, --lr, --every, the pixel filter),
    into CASE/trial."""
    from pcst_prep.tune import weak_evidence
    from pcst_train.config import TrainConfig
    from pcst_train.trial import trial

    with open(args.out / "results.csv") as f:
        cases = [r for r in csv.DictReader(f)
                 if r["clip"] in args.clips and r["noise"] in args.noises]
    config = TrainConfig(steps=args.steps, lr=args.lr, batch_size=16, seed=0,
                         validate_every=args.every, pixel_filter=args.pixel_filter,
                         loss=args.loss)
    rows = []
    for case in cases:
        tune_p = int(case["tune_p"])
        fits = {int(p): fit for p, fit in json.loads(case["noise_fit"]).items()}
        found = weak_evidence(tune_p, fits)
        if found is None:
            continue
        other, why = found
        folder = args.out / case["clip"] / case["noise"]
        t0 = time.perf_counter()
        result = trial([folder / f"p{tune_p}.zarr", folder / f"p{other}.zarr"],
                       folder / "trial", config, progress=False)
        psnr = {r["patch_size"]: r["last_val_psnr"] for r in result["runs"]}
        chosen = next(r["patch_size"] for r in result["runs"]
                      if r["store"] == result["chosen"])
        sweep = {p: float(case[f"psnr_p{p}"]) for p in SWEEP}
        row = {"clip": case["clip"], "noise": case["noise"], "why": why, "tune_p": tune_p,
               "other_p": other, "trial_p": chosen, "psnr_tune_p": round(psnr[tune_p], 3),
               "psnr_other_p": round(psnr[other], 3),
               "trial_loss_db": round(max(psnr.values()) - psnr[chosen], 3),
               "sweep_best_p": max(sweep, key=sweep.get),
               "sweep_gap_db": round(max(sweep.values()) - sweep[chosen], 3),
               "trial_seconds": round(result["seconds"], 1),
               "case_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not rows:
        print("no case of OUT's results has weak evidence for tune's p")
        return
    with open(args.out / "trial.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| clip | noise | why | tune's p | other p | trial's p | PSNR at tune's p | "
             "PSNR at the other p | trial's loss | sweep's best p | trial's p below the sweep's "
             "best | trainings |", "|" + " --- |" * 12]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['noise']} | {r['why']} | {r['tune_p']} | "
                     f"{r['other_p']} | {r['trial_p']} | "
                     f"{r['psnr_tune_p']:.2f} | {r['psnr_other_p']:.2f} | "
                     f"{r['trial_loss_db']:.2f} dB | {r['sweep_best_p']} | "
                     f"{r['sweep_gap_db']:.2f} dB | {r['trial_seconds']:.0f} s |")
    (args.out / "trial.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def logged(path: Path) -> tuple[float, float]:
    """(val_loss, val_psnr) that the run logged at a kept model's step: the store's own
    validation loss and the PSNR on its held-out tiles."""
    step = int(path.stem.split("_")[1])
    with open(path.parent.parent / "log.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["val_loss"] and int(r["step"]) == step)
    return float(row["val_loss"]), float(row["val_psnr"])


def kept_models(out: Path) -> list[Path]:
    """The case's kept models (every validation of every run of the sweep), in sweep order."""
    return [m for p in SWEEP for m in sorted((out / f"run_p{p}" / "validated").glob("*.pt"))]


def rescore(args) -> None:
    """``--rescore``: the Spearman of today's validation loss over each case's kept models
    (see the module docstring), into OUT/rescored.csv and .md."""
    from pcst_train.checkpoints import load_model
    from pcst_train.config import TrainConfig
    from pcst_train.train import HeldOut

    factor, judged_by = TrainConfig().validation_filter, TrainConfig().validation_loss
    rows, started = [], time.perf_counter()
    for clip in args.clips:
        for noise in args.noises:
            case, t0 = args.out / clip / noise, time.perf_counter()
            models = kept_models(case)
            if not models:
                continue
            held = HeldOut(case / f"p{SWEEP[0]}.zarr", pixel_filter=factor, loss=judged_by)
            before, today = [], []  # (loss, PSNR) as logged; today's loss
            for path in models:
                model, _ = load_model(path)
                figures = held.evaluate(model, "cpu")
                loss, psnr = logged(path)
                if abs(figures["val_psnr"] - psnr) > 0.01:
                    sys.exit(f"{path}: PSNR {figures['val_psnr']:.3f} on {len(held)} tiles, logged "
                             f"{psnr}: not the held-out tiles it was judged on")
                before.append((loss, psnr))
                today.append(figures["val_loss"])
            psnrs = [-v for _, v in before]
            rows.append({"clip": clip, "noise": noise, "validations": len(models),
                         "spearman_logged": round(spearman([v for v, _ in before], psnrs), 4),
                         "spearman": round(spearman(today, psnrs), 4),
                         "validation_filter": factor, "validation_loss": judged_by,
                         "pixels_kept": round(held.kept, 4),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    if not rows:
        sys.exit(f"{args.out}: no case with kept models; run the sweep first")
    with open(args.out / "rescored.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"| clip | noise | validations | Spearman, logged loss | Spearman, today's loss "
             f"({judged_by}, validation filter {factor:g}) | pixels kept |", "|" + " --- |" * 6]
    lines += [f"| {r['clip']} | {r['noise']} | {r['validations']} | {r['spearman_logged']:.4f} "
              f"| {r['spearman']:.4f} | {r['pixels_kept']:.1%} |" for r in rows]
    lines.append("")
    lines.append(f"Spearman at least {GOALS['spearman']}: logged "
                 f"{sum(r['spearman_logged'] >= GOALS['spearman'] for r in rows)}, today "
                 f"{sum(r['spearman'] >= GOALS['spearman'] for r in rows)} of {len(rows)}")
    text = "\n".join(lines) + "\n"
    (args.out / "rescored.md").write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s", flush=True)


# the goals: the p used within this many dB of the sweep's best, the validation loss's
# Spearman at least this, the gap to N2C at most this many dB
GOALS = {"p": 0.3, "spearman": 0.9, "gap": 0.5}


def summary(args) -> None:
    """``--summary``: the issue's three figures per case of OUT, from what the other steps
    left there, and how many cases meet each goal."""
    from n2c_gap import final_psnr

    with open(args.out / "results.csv") as f:
        cases = [r for r in csv.DictReader(f)
                 if r["clip"] in args.clips and r["noise"] in args.noises]
    rescored = {}
    if (args.out / "rescored.csv").exists():
        with open(args.out / "rescored.csv") as f:
            rescored = {(r["clip"], r["noise"]): r for r in csv.DictReader(f)}
        # a case swept again since its rescore (its logged runs no longer those rescored: another
        # count of validations or another Spearman of the logged loss) keeps its own figure
        swept = {(c["clip"], c["noise"]): c for c in cases}
        rescored = {key: float(r["spearman"]) for key, r in rescored.items() if key in swept
                    and int(swept[key]["n_validations"]) == int(r["validations"])
                    and abs(float(swept[key]["spearman"]) - float(r["spearman_logged"])) < 2e-3}
    trials = {}
    if (args.out / "trial.csv").exists():
        with open(args.out / "trial.csv") as f:
            trials = {(r["clip"], r["noise"]): r for r in csv.DictReader(f)}
    lines = ["| clip | noise | sweep's best (p) | p used | its PSNR below the best | Spearman "
             "| N2C at tune's p | gap to N2C |", "|" + " --- |" * 8]
    met, no_n2c = {goal: [] for goal in GOALS}, 0
    for case in sorted(cases, key=lambda c: (c["clip"], GRID.index(c["noise"])
                                             if c["noise"] in GRID else len(GRID))):
        key = (case["clip"], case["noise"])
        sweep = {p: float(case[f"psnr_p{p}"]) for p in SWEEP}
        best = max(sweep, key=sweep.get)
        trialled = trials.get(key)
        used = int(trialled["trial_p"]) if trialled else int(case["tune_p"])
        below = sweep[best] - sweep[used] if used in sweep else float("nan")
        n2c_run = args.out / case["clip"] / case["noise"] / f"run_n2c_p{case['tune_p']}"
        n2c = gap = float("nan")
        if (n2c_run / "log.csv").exists():
            n2c = final_psnr(n2c_run)
            gap = n2c - sweep[int(case["tune_p"])]
        else:
            no_n2c += 1
        rho = rescored.get(key, float(case["spearman"]))
        for goal, ok in (("p", below <= GOALS["p"]), ("spearman", rho >= GOALS["spearman"]),
                         ("gap", gap <= GOALS["gap"])):
            if ok:
                met[goal].append(key)
        how = f"{used} (trial)" if trialled else f"{used} (tune)"
        shown = f"{rho:.2f}" if rho >= GOALS["spearman"] or round(rho, 2) < GOALS["spearman"] \
            else f"{rho:.4f}"  # a miss that two decimals would round up to the goal
        lines.append(f"| {key[0]} | {key[1]} | {sweep[best]:.2f} ({best}) | {how} | "
                     f"{below:.2f} dB | {shown} | {n2c:.2f} | {gap:.2f} dB |")
    n = len(cases)
    lines += ["", f"- p used within {GOALS['p']} dB of the sweep's best: {len(met['p'])} of {n}",
              f"- Spearman at least {GOALS['spearman']}: {len(met['spearman'])} of {n}",
              f"- gap to N2C at most {GOALS['gap']} dB: {len(met['gap'])} of {n}"
              + (" (nan: no N2C run; run benchmarks/n2c_gap.py)" if no_n2c
                 else "")]
    if rescored:
        count = sum((c["clip"], c["noise"]) in rescored for c in cases)
        lines.append(f"- Spearman: today's validation loss (--rescore, rescored.csv) in "
                     f"{count} of {n} cases"
                     + (", the loss that the runs logged in the others" if count < n else ""))
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text, end="")


def write_results(out: Path, rows: list[dict]) -> None:
    """results.csv and .md: these rows, and the other cases an earlier run of OUT measured."""
    path = out / "results.csv"
    if path.exists():
        ours = {(r["clip"], r["noise"]) for r in rows}
        with open(path) as f:
            earlier = [r for r in csv.DictReader(f) if (r["clip"], r["noise"]) not in ours]
        rows = [{k: _number(v) for k, v in r.items()} for r in earlier] + rows
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[-1]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(markdown(rows))


def _number(text: str):
    """A results.csv field back as the number (or text) it was written from."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text or None


def markdown(rows: list[dict]) -> str:
    """The results table of docs/results.md."""
    lines = ["| clip | noise | PSNR before | " + " | ".join(f"p {p}" for p in SWEEP)
             + " | best p | tune's p (gap) | lowest val. loss p | reference p | Spearman |",
             "|" + " --- |" * (8 + len(SWEEP))]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['noise']} | {r['psnr_before']:.2f} | "
            + " | ".join(f"{r[f'psnr_p{p}']:.2f}" for p in SWEEP)
            + f" | {r['best_p']} | {r['tune_p']} ({r['tune_gap_db']:.2f} dB) | {r['val_loss_p']}"
            f" | {r['reference_p'] or '-'} | {r['spearman']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
