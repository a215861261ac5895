"""The path of a user with noisy footage and no clean images, run as they would run it: the
default ``real`` pipeline through the command line, with the clean frames kept aside to
measure the result and never shown to pcst.

A clip's 8 segments of 14 frames get a noise of ``clean_free.py``'s table (one draw per
frame, clipped to [0, 1]) and are written as 16-bit PNG sequences: the "footage". Then, as
README's "Your own bursts" section says: ``pcst-prep tune``; ``pcst-prep build`` with the
defaults (p chosen automatically); where tune says that its evidence is weak, a second build
at the p it names (copying the first's validation tiles: ``--validation-from``) and
``pcst-train trial`` of the two stores (else ``pcst-train`` alone with
the trial's settings); then README's training command on the store kept (``pcst-train STORE
--out OUT --patience 5``: the paper's schedule, stopped by the validation loss); last, every
trained model and the shipped one denoise the held-out sequences' frames, and ``pcst-train
evaluate`` measures their PSNR against the clean frames.

Run from the repository root: ``.venv/bin/python benchmarks/user_path.py --clip bikes
--noise s5k1 --out runs/user_path`` (finished steps are kept: the builds resume, the trial
keeps its trainings). Prints each command's wall time and writes OUT/CLIP_NOISE/summary.json.
``--grey`` makes the footage grey, as a monochrome camera's or a microscope's (OUT/CLIP_NOISE_grey;
the shipped RGB model starts it as its grayscale copy).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_free import NOISES  # noqa: E402
from quality import SEGMENT_LENGTH, clip_frames, write_training_frames  # noqa: E402

BIN = Path(sys.executable).parent


def write_footage(clean_dir: Path, out: Path, noise: str, seed: int = 11) -> Path:
    """The noisy "footage": every sequence of ``clean_dir`` with ``noise`` added."""
    from pcst_prep.bursts import read_sequence, write_image
    from pcst_prep.noise import get_noise_model

    if (out / "done").exists():
        return out
    model, params, _ = NOISES[noise]
    draw = get_noise_model(model, **params)
    rng = np.random.default_rng(seed)
    for sequence in sorted(p for p in clean_dir.iterdir() if p.is_dir()):
        for i, frame in enumerate(read_sequence(sequence)):
            (out / sequence.name).mkdir(parents=True, exist_ok=True)
            write_image(out / sequence.name / f"{i:03d}.png",
                        np.clip(draw(frame[None], rng)[0], 0, 1), np.uint16)
    (out / "done").touch()
    return out


def run(log: list, name: str, *command) -> str:
    """Run a pcst command as a user would; its output, and its wall time in ``log``."""
    start = time.perf_counter()
    done = subprocess.run([str(BIN / command[0]), *map(str, command[1:])], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    log.append((name, seconds))
    print(f"{name}: {seconds:.0f} s", flush=True)
    return done.stdout + done.stderr


def held_out_sequences(store: Path) -> list[str]:
    import zarr

    group = zarr.open_group(str(store), mode="r")
    sources = sorted({int(s) for s in group["validation/bursts"][:, 1]})
    return [group.attrs["sources"][s]["path"] for s in sources]


def mean_psnr(log: list, name: str, model, footage: Path, clean: Path, sequences,
              out: Path) -> float:
    """Mean PSNR of ``model`` over the frames of ``sequences`` (pcst-train evaluate)."""
    values = []
    for sequence in sequences:
        table = out / f"evaluate_{name}_{sequence}.csv"
        run(log, f"evaluate {name} {sequence}", "pcst-train", "evaluate", model, "--noisy",
            footage / sequence, "--clean", clean / sequence, "--csv", table)
        with open(table) as f:
            values += [float(r["psnr"]) for r in csv.DictReader(f)
                       if r["image"] != "mean"]
    return float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="bikes")
    parser.add_argument("--noise", default="s5k1", choices=sorted(NOISES))
    parser.add_argument("--out", type=Path, default=Path("runs/user_path"))
    parser.add_argument("--grey", action="store_true",
                        help="Grey footage (a monochrome camera's, a microscope's): the clip's "
                        "frames averaged over R, G, B before the noise is added.")
    args = parser.parse_args()
    grey = "_grey" if args.grey else ""
    out = args.out / f"{args.clip}_{args.noise}{grey}"
    out.mkdir(parents=True, exist_ok=True)
    frames = clip_frames(args.clip)
    clean = write_training_frames(frames.mean(axis=-1) if args.grey else frames,
                                  args.out / f"{args.clip}{grey}" / "clean",
                                  length=SEGMENT_LENGTH)
    footage = write_footage(clean, out / "footage", args.noise)
    log = []
    report = run(log, "tune", "pcst-prep", "tune", footage, "--png", out / "tune.png")
    (out / "tune.txt").write_text(report)
    run(log, "build (defaults)", "pcst-prep", "build", footage, out / "auto.zarr",
        "--no-progress")
    chosen = int(re.search(r"recommended: --patch-size (\d+)", report).group(1))
    other = re.search(r"second store at --patch-size (\d+)", report)
    stores = [out / "auto.zarr"]
    if other:
        stores.append(out / f"p{other.group(1)}.zarr")
        run(log, f"build (p {other.group(1)})", "pcst-prep", "build", footage, stores[1],
            "--patch-size", other.group(1), "--validation-from", out / "auto.zarr",
            "--no-progress")
    trial_text = run(log, "trial", "pcst-train", "trial", *stores, "--out", out / "trial",
                     "--no-progress") if other else None
    if other:
        (out / "trial.txt").write_text(trial_text)
        result = json.loads((out / "trial" / "trial.json").read_text())
        runs = {Path(r["store"]).name: Path(r["run"]) for r in result["runs"]}
        kept = Path(result["chosen"]).name
    else:
        run_dir = out / "run"
        if not (run_dir / "final.pt").exists():
            run(log, "train", "pcst-train", stores[0], "--out", run_dir, "--steps", "300",
                "--lr", "3e-4", "--validate-every", "50", "--no-progress", "--resume")
        runs, kept = {stores[0].name: run_dir}, stores[0].name
    readme = out / "readme"  # README's "Your own bursts" command, on the store kept
    if not (readme / "final.pt").exists():
        run(log, "train (README)", "pcst-train", out / kept, "--out", readme, "--patience", "5",
            "--no-progress", "--resume")
    runs["readme"] = readme
    sequences = held_out_sequences(stores[0])
    psnr = {"shipped model": mean_psnr(log, "shipped", "pretrained", footage, clean, sequences,
                                       out)}
    for store, run_dir in runs.items():
        psnr[store] = mean_psnr(log, store, run_dir / "best.pt", footage, clean, sequences, out)
    summary = {"clip": args.clip, "noise": args.noise, "grey": args.grey, "tune_p": chosen,
               "other_p": int(other.group(1)) if other else None, "kept": kept,
               "held_out": sequences, "psnr_best_pt": psnr, "seconds": dict(log)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
