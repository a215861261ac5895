"""Which clean-free validation set ranks models like their true PSNR? (issue 13, part 1)

For one clip and noise of the clean-free experiment (``benchmarks/clean_free.py``, whose stores
it reuses): trains the 4 runs of its p sweep again, keeping the weights of every validation
(``keep_validated``), then scores those 28 models on validation sets of several designs, all
built from the same 2 held-out sequences with the same noise draw:

- which frames are centres: the build's bursts (2 per sequence, today's store) or every frame
  of the sequences (14 per sequence, bursts of M = 7 around each);
- the targets: guided patch-craft (matched on the smoothed burst, today's) or plain patch-craft,
  at the validation p (35);
- how many targets per frame: 4 or 16 (random offsets; the 4 are the first of the 16).

Each design's validation loss is the MSE between the model's output and the targets (whole
frames, target bias removed as in training); the truth is the PSNR against the clean frames,
over every held-out frame (measured only). Reports the Spearman rank correlation per design.

Run from the repository root after ``make benchmark-clean-free`` (or at least its stores for
the case): ``.venv/bin/python benchmarks/validation_design.py --clip bbb --noise s10k2``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_free import NOISES, SWEEP, config_for, spearman  # noqa: E402

HELD_OUT = (6, 7)  # the segments --holdout 0.25 holds out of 8
VALIDATION_P = 35
TARGETS = 16


def train_keeping(store: Path, out: Path, steps: int, every: int, lr: float):
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    if not (out / "final.pt").exists():
        train(store, out, TrainConfig(steps=steps, lr=lr, batch_size=16, seed=0,
                                      validate_every=every, keep_validated=True,
                                      loss="mse", pixel_filter=0.0, validation_filter=0.0),
              progress=False)
    return sorted((out / "validated").glob("step_*.pt"))


def held_out_frames(frames_dir: Path, noise: str):
    """(noisy, clean) [S, N, H, W, C] of the held-out sequences, one noise draw each."""
    from pcst_prep.bursts import read_sequence
    from pcst_prep.noise import get_noise_model

    model_name, params, _ = NOISES[noise]
    model = get_noise_model(model_name, **params)
    clean = np.stack([read_sequence(frames_dir / f"segment{s:02d}") for s in HELD_OUT])
    rng = np.random.default_rng(2026)
    noisy = np.stack([model(c, rng) for c in clean]).astype(np.float32)
    return noisy, clean


def targets_for(noisy_seq: np.ndarray, centre: int, kind_name: str, config, offsets_rng):
    """TARGETS targets of one centre frame over the whole frame, float32 [K, H, W, C]."""
    from pcst_prep.targets import target_kind

    n, m = len(noisy_seq), config.burst_length
    start = min(max(0, centre - m // 2), n - m)
    burst = noisy_seq[start:start + m]
    kind = target_kind(kind_name)
    vconfig = config.replace(patch_size=VALIDATION_P)
    nnf = kind.match(burst, centre - start, vconfig)
    prepared = kind.prepare(burst, centre - start, vconfig)
    offsets = kind.offsets(vconfig)
    chosen = offsets_rng.choice(len(offsets), TARGETS, replace=False)
    h, w = burst.shape[1:3]
    return np.stack([kind.craft(prepared, nnf, vconfig, offsets[o], slice(0, h), slice(0, w))
                     for o in chosen])


def case_parser(doc: str, folder: str) -> argparse.ArgumentParser:
    """The options naming a case: its clip and noise, the clean-free experiment's folder
    (``--source``) and this experiment's (``folder``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--clip", default="bbb")
    parser.add_argument("--noise", default="s10k2")
    parser.add_argument("--source", type=Path, default=Path("runs/clean_free"))
    parser.add_argument(folder, type=Path, default=Path("runs/validation_design"))
    return parser


def main():
    parser = case_parser(__doc__, "--out")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-4)
    args = parser.parse_args()
    import torch

    from pcst_train.checkpoints import load_model

    started = time.perf_counter()
    case = args.source / args.clip / args.noise
    out = args.out / args.clip / args.noise
    models = []
    for p in SWEEP:
        models += train_keeping(case / f"p{p}.zarr", out / f"run_p{p}", args.steps, args.every,
                                args.lr)
    print(f"{len(models)} models, {time.perf_counter() - started:.0f} s", flush=True)

    config = config_for(args.noise, SWEEP[0])
    noisy, clean = held_out_frames(args.source / args.clip / "frames", args.noise)
    n_frames = noisy.shape[1]
    store_centres = {3, 10}  # the build's bursts of 7 in 14 frames: centres 3 and 10
    targets = {}
    for kind in ("guided", "patch-craft"):
        rng = np.random.default_rng(7)
        targets[kind] = [[targets_for(noisy[s], c, kind, config, rng) for c in range(n_frames)]
                         for s in range(len(HELD_OUT))]
    print(f"targets, {time.perf_counter() - started:.0f} s", flush=True)

    def to_torch(a):
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))

    rows = []
    with torch.no_grad():
        for path in models:
            model, _ = load_model(path)
            model.eval()
            outputs = [[model(to_torch(noisy[s, c])[None])[0].numpy().transpose(1, 2, 0)
                        for c in range(n_frames)] for s in range(len(HELD_OUT))]
            psnr = np.mean([10 * np.log10(1 / np.mean((outputs[s][c] - clean[s, c]) ** 2))
                            for s in range(len(HELD_OUT)) for c in range(n_frames)])
            row = {"model": str(path.relative_to(out)), "psnr": float(psnr)}
            for kind in targets:
                for centres in ("bursts", "every frame"):
                    for k in (4, TARGETS):
                        frames = [(s, c) for s in range(len(HELD_OUT)) for c in range(n_frames)
                                  if centres == "every frame" or c in store_centres]
                        # the targets' mean bias over the set is removed, as in validation
                        bias = np.mean([targets[kind][s][c][:k].mean() - noisy[s, c].mean()
                                        for s, c in frames])
                        loss = np.mean([np.mean((outputs[s][c][None] - targets[kind][s][c][:k]
                                                 + bias) ** 2) for s, c in frames])
                        row[f"{kind} / {centres} / K {k}"] = float(loss)
            rows.append(row)
    designs = [key for key in rows[0] if key not in ("model", "psnr")]
    psnrs = [r["psnr"] for r in rows]
    result = {d: round(spearman([r[d] for r in rows], [-v for v in psnrs]), 3) for d in designs}
    (out / "models.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Validation designs: {args.clip} {args.noise}, {len(rows)} models", "",
             "| targets | centres | targets per frame | Spearman |", "| --- | --- | --- | --- |"]
    for d, value in result.items():
        kind, centres, k = d.split(" / ")
        lines.append(f"| {kind} | {centres} | {k[2:]} | {value:.2f} |")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    print(text)
    print(f"total {time.perf_counter() - started:.0f} s on {platform.processor() or 'cpu'}",
          flush=True)


if __name__ == "__main__":
    main()
