"""What keeps the clean-free validation loss from ranking models like their PSNR? (issue 13)

A patch-craft validation target T differs from the clean frame x by a content error (the
matched patches' scene is not exactly x's: motion, seams) and by its noise, which the matching
chose to resemble the input's noise (the cross term between the model's error and the target's
noise rewards models that keep noise). With synthetic noise the two can be told apart: crafting
with the same nnf from the clean burst gives the target's content Tc, so that T - Tc is its
noise. This scores the 28 kept models of a case (``benchmarks/validation_design.py``, whose
runs it reuses) against:

- ``patch-craft``: T, as the store's validation does;
- ``content error only``: Tc plus an independent draw of the noise;
- ``noise fit only``: x plus T's own noise, T - Tc;
- ``ideal``: x plus an independent draw of the noise;

and reports the Spearman correlation of each loss with the true PSNR (every held-out frame,
measured only), and with the PSNR on the store's held-out tiles that the case's runs logged
(``val_psnr`` at the model's step, the truth of ``clean_free.py``'s column), beside the
store's own validation loss (``val_loss``). Clean frames are used here to find out what
limits the estimator, never by the tool.

With ``--pixel-filters F ...`` each ``--rings`` design is also scored as a build holds its
held-out frames out: on each frame's validation tiles, every pixel and those that
``pcst-train --validation-filter F`` keeps.

Run from the repository root after validation_design.py for the case:
``.venv/bin/python benchmarks/validation_terms.py --clip bbb --noise s10k2``.

``--on-store`` scores the same models on the store's own held-out tiles instead (the store at
the case's lowest p; the truth is the PSNR that each run logged on them): the store's
validation loss against the ideal target on those tiles (the clean tile plus 1 or ``K`` fresh
draws of the store's noise), against the noisy targets' mean (the clean tile plus the noise's
mean given it, over ``BIAS_DRAWS`` draws: what a noisy target's loss tends to with unlimited
draws, so what no clean-free squared loss can beat on that held-out set; the absolute error
ranks by the targets' median instead: ``--pixel-filters``), against the unbiased ideal
(the ideal less that mean: where the two rank differently, the noise's bias is what limits),
against the clean tile itself (the truth's own loss: the MSE, where the truth averages the
tiles' PSNR), and against
the store's loss with ring targets of other sizes (``--store-rings P ...``: the store rebuilt
under ``RUNS/CLIP/NOISE/rings/`` with ``validation_patch_size`` P and the store's hole, so
the very estimator that ``pcst-train`` would use). Each Spearman over the 28 validations and
over the 24 trained models (the four starts are one model, which every design ranks last),
and over the 28 validations against a second truth: the PSNR against the noisy frames' mean
(the clean tile plus the noise's mean given it), the ground truth that averaging many frames
of a still scene gives (as real-noise datasets make theirs), the one that the noisy footage
identifies where the noise's mean depends on the image.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_free import (NOISES, SWEEP, build_store, config_for, kept_models,  # noqa: E402
                        logged, spearman)
from n2c_gap import BIAS_DRAWS  # noqa: E402
from validation_design import VALIDATION_P, case_parser, held_out_frames  # noqa: E402

K = 4


def held_out_bursts(noisy, clean, m):
    """Every held-out frame as a centre: ((sequence, frame), noisy burst, clean burst, the
    centre's index in them), each burst the M frames around its centre, inside the sequence."""
    for s in range(noisy.shape[0]):
        n = noisy.shape[1]
        for c in range(n):
            start = min(max(0, c - m // 2), n - m)
            yield (s, c), noisy[s, start:start + m], clean[s, start:start + m], c - start


def case_targets(noisy, clean, config, rng, patch_size=VALIDATION_P):
    """Per held-out frame (every frame a centre): T [K, H, W, C] and Tc from the same nnf."""
    from pcst_prep.targets import target_kind

    kind = target_kind("patch-craft")
    vconfig = config.replace(patch_size=patch_size)
    offsets = kind.offsets(vconfig)
    out = {}
    for key, burst, burst_clean, centre in held_out_bursts(noisy, clean, config.burst_length):
        nnf = kind.match(burst, centre, vconfig)
        chosen = offsets[rng.choice(len(offsets), K, replace=False)]
        h, w = burst.shape[1:3]
        craft = lambda b: np.stack([kind.craft(kind.prepare(b, centre, vconfig), nnf,  # noqa: E731
                                               vconfig, o, slice(0, h), slice(0, w))
                                    for o in chosen])
        out[key] = craft(burst), craft(burst_clean)
    return out


def ring_targets(noisy, clean, config, patch_size, hole):
    """Per held-out frame: the ring target [1, H, W, C] and its content, from one match."""
    from pcst_prep.matching import ring_match, ring_target

    out = {}
    for key, burst, burst_clean, centre in held_out_bursts(noisy, clean, config.burst_length):
        match = ring_match(burst, centre, patch_size, hole, config.search_radius)
        out[key] = ring_target(burst, match)[None], ring_target(burst_clean, match)[None]
    return out


def tile_mask(noisy, target, config, factor):
    """[H, W, 1] float: 1 on the pixels of a held-out frame's validation tiles (those a
    build holds out, :func:`pcst_prep.stages.validation_tiles`) that the pixel filter at
    ``factor`` keeps (all of them for 0), the target shifted by its mean offset as the
    loss takes it; 0 elsewhere."""
    import torch

    from pcst_prep.stages import validation_tiles
    from pcst_train.losses import pixel_filter_mask

    size = config.tile_size
    shifted = target - (target.mean() - noisy.mean())
    mask = np.zeros(noisy.shape[:2] + (1,), np.float32)
    for row, col in validation_tiles(*noisy.shape[:2], config):
        region = (slice(row, row + size), slice(col, col + size))
        keep = np.ones((size, size), bool)
        if factor:
            as_tensor = lambda a: torch.from_numpy(  # noqa: E731
                np.ascontiguousarray(a[region].transpose(2, 0, 1)))[None]
            keep = pixel_filter_mask(as_tensor(noisy), as_tensor(shifted), factor)[0, 0].numpy()
        mask[region][..., 0] = keep
    return mask


def ring_frame_targets(noisy, clean, config, patch_size, hole):
    """Per held-out frame: ring targets from every other frame of its burst, [M - 1, H, W, C],
    pixel by pixel in increasing ring distance (target k copies the pixel's k-th best frame's
    match), and their content, from the same matches."""
    from pcst_prep.matching import ring_match, ring_target

    out = {}
    for key, burst, burst_clean, centre in held_out_bursts(noisy, clean, config.burst_length):
        found = [ring_match(burst, centre, patch_size, hole, config.search_radius,
                            frames=[f], return_distance=True)
                 for f in range(len(burst)) if f != centre]
        order = np.argsort(np.stack([d for _, d in found]), axis=0, kind="stable")
        targets = np.stack([ring_target(burst, match) for match, _ in found])
        contents = np.stack([ring_target(burst_clean, match) for match, _ in found])
        out[key] = (np.take_along_axis(targets, order[..., None], axis=0),
                    np.take_along_axis(contents, order[..., None], axis=0))
    return out


def on_store(args):
    """``--on-store``: the store's validation loss against ideal targets and other ring sizes,
    on the store's own held-out tiles."""
    import torch

    from pcst_prep import store as zstore
    from pcst_prep.noise import get_noise_model
    from pcst_train.checkpoints import load_model
    from pcst_train.metrics import psnr
    from pcst_train.train import HeldOut

    started = time.perf_counter()
    out = args.runs / args.clip / args.noise
    models = kept_models(out)
    if not models:
        sys.exit(f"{out}: no kept models; run benchmarks/clean_free.py for the case first")
    store = out / f"p{SWEEP[0]}.zarr"
    held = HeldOut(store, pixel_filter=0)  # its tiles and targets
    parameters = zstore.parameters(zstore.open_store(store))
    rng = np.random.default_rng(3)
    noise = get_noise_model(parameters["noise"], **parameters["noise_params"])
    clean = held.clean.numpy().transpose(0, 2, 3, 1)
    draws = np.stack([np.stack([noise(c[None], rng)[0] for c in clean]) for _ in range(K)], 1)
    ideal = torch.from_numpy(np.ascontiguousarray(draws.transpose(0, 1, 4, 2, 3)))
    # the noise's mean given the clean tile (over BIAS_DRAWS draws, as n2c_gap's unbiased)
    bias = sum(np.stack([noise(c[None], rng)[0] for c in clean]) - clean
               for _ in range(BIAS_DRAWS)) / BIAS_DRAWS
    bias = torch.from_numpy(np.ascontiguousarray(bias.transpose(0, 3, 1, 2)))[:, None]
    unbiased = ideal - bias
    mean = held.clean[:, None] + bias  # what the noisy targets average to

    def shift(t):  # as HeldOut takes its targets' mean offset from the inputs
        return t - (t.mean() - held.inputs.mean())

    designs = {"clean (the truth's own loss)": held.clean[:, None],
               "ideal, 1 draw": shift(ideal[:, :1]), f"ideal, {K} draws": shift(ideal),
               "the noisy targets' mean (clean + the noise's mean)": shift(mean),
               "unbiased ideal, 1 draw": unbiased[:, :1], f"unbiased ideal, {K} draws": unbiased}
    rebuilt_stores = {}
    for size in args.store_rings:
        rebuilt = out / "rings" / f"p{SWEEP[0]}_ring{size}.zarr"
        build_store(args.source / args.clip / "frames", rebuilt, config_for(
            args.noise, SWEEP[0]).replace(validation_patch_size=size,
                                          validation_hole=parameters["validation_hole"]))
        other = HeldOut(rebuilt, pixel_filter=0)
        if not torch.equal(other.inputs, held.inputs):
            sys.exit(f"{rebuilt}: not the same held-out tiles as {store}")
        designs[f"ring {size}:{parameters['validation_hole']} (rebuilt store)"] = other.targets
        rebuilt_stores[size] = rebuilt
    # the loss with --validation-filter F, on the store and the rebuilt ones: pcst-train's own
    # estimator (HeldOut)
    judged_by = args.validation_loss
    filtered = {f"store's targets, validation filter {f:g}, {judged_by}":
                HeldOut(store, pixel_filter=f, loss=judged_by) for f in args.pixel_filters}
    filtered |= {f"ring {size}:{parameters['validation_hole']} (rebuilt store), validation "
                 f"filter {f:g}, {judged_by}": HeldOut(path, pixel_filter=f, loss=judged_by)
                 for size, path in rebuilt_stores.items() for f in args.pixel_filters}
    rows = []
    with torch.no_grad():
        for path in models:
            model, _ = load_model(path)
            model.eval()
            output = torch.cat([model(held.inputs[i:i + 16])
                                for i in range(0, len(held), 16)])[:, None]
            row = {"model": str(path.relative_to(out)), "start": path.stem == "step_000000"}
            row["store's validation loss"], row["tiles psnr"] = logged(path)
            # the second truth: PSNR against the noisy frames' mean (what averaging many
            # frames of a still scene gives, as real-noise datasets make their ground truth)
            row["psnr against the mean"] = float(psnr(output[:, 0], mean[:, 0],
                                                      data_range=1.0).mean())
            row.update({d: float(((output - t) ** 2).mean()) for d, t in designs.items()})
            row.update({d: h.evaluate(model, "cpu")["val_loss"] for d, h in filtered.items()})
            rows.append(row)
    trained = [r for r in rows if not r["start"]]
    lines = [f"# Validation on the store's own held-out tiles: {args.clip} {args.noise}, "
             f"{len(held)} tiles, {len(rows)} validations", "",
             "| targets | Spearman, 28 validations | 24 trained models | 28 validations, "
             "truth the PSNR against the noisy frames' mean |", "| --- | --- | --- | --- |"]
    kept = "".join(f"; {d}: {h.kept:.1%} of the pixels kept" for d, h in filtered.items())
    for d in ["store's validation loss", *designs, *filtered]:
        value = [spearman([r[d] for r in sel], [-r[truth] for r in sel])
                 for sel, truth in ((rows, "tiles psnr"), (trained, "tiles psnr"),
                                    (rows, "psnr against the mean"))]
        lines.append(f"| {d} | {value[0]:.3f} | {value[1]:.3f} | {value[2]:.3f} |")
    span = max(r["tiles psnr"] for r in trained) - min(r["tiles psnr"] for r in trained)
    text = "\n".join(lines) + f"\n\nThe trained models' PSNR spans {span:.2f} dB{kept}.\n"
    (out / "terms_on_store.md").write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s", flush=True)


def main():
    parser = case_parser(__doc__, "--runs")
    parser.add_argument("--patch-sizes", type=int, nargs="*", default=[VALIDATION_P],
                        help="validation p of the targets (the store's default: %(default)s)")
    parser.add_argument("--rings", nargs="*", default=[],
                        help="ring targets as P:HOLE (pcst_prep.matching.ring_match)")
    parser.add_argument("--ring-frames", nargs="*", default=[],
                        help="ring targets from each other frame as P:HOLE:K[,K...]: the loss "
                        "averages the pixel's K best frames' targets")
    parser.add_argument("--on-store", action="store_true",
                        help="score on the store's own held-out tiles (see the module's doc)")
    parser.add_argument("--store-rings", type=int, nargs="*", default=[],
                        help="with --on-store: ring sizes of rebuilt validation targets")
    parser.add_argument("--validation-loss", choices=("mae", "mse"), default="mae",
                        help="with --on-store and --pixel-filters: the error of pcst-train's "
                        "loss rows (the other rows are squared errors, as before 2026-11-27)")
    parser.add_argument("--pixel-filters", type=float, nargs="*", default=[],
                        help="the loss with pcst-train --validation-filter at these factors "
                        "(with --on-store the error of --validation-loss, else squared): "
                        "with --on-store the store's, else each --rings design's on every "
                        "held-out frame's validation tiles (and on those tiles unfiltered)")
    args = parser.parse_args()
    if args.on_store:
        return on_store(args)
    import torch

    from pcst_prep.noise import get_noise_model
    from pcst_train.checkpoints import load_model

    started = time.perf_counter()
    out = args.runs / args.clip / args.noise
    models = kept_models(out)
    if not models:
        sys.exit(f"{out}: no kept models; run benchmarks/validation_design.py for the case first")
    noisy, clean = held_out_frames(args.source / args.clip / "frames", args.noise)
    config = config_for(args.noise, SWEEP[0])
    model_name, params, _ = NOISES[args.noise]
    fresh_rng = np.random.default_rng(99)
    noise_model = get_noise_model(model_name, **params)
    fresh = {(s, c): noise_model(np.repeat(clean[s, c][None], K, axis=0), fresh_rng) - clean[s, c]
             for s in range(noisy.shape[0]) for c in range(noisy.shape[1])}
    draws = max([K] + [int(k) for spec in args.ring_frames for k in spec.split(":")[2].split(",")])
    if draws > K:  # more draws for --ring-frames, from a generator of their own (the first K
        more_rng = np.random.default_rng(100)  # are those of every other run)
        for (s, c), noise in fresh.items():
            more = noise_model(np.repeat(clean[s, c][None], draws - K, axis=0), more_rng)
            fresh[s, c] = np.concatenate([noise, more - clean[s, c]])
    def decomposed(name, targets, k):
        """The design's three losses: T, its content plus fresh noise, x plus its noise."""
        return {f"{name}: T": lambda key: targets[key][0],
                f"{name}: content error only": lambda key: targets[key][1] + fresh[key][:k],
                f"{name}: noise fit only":
                    lambda key: clean[key][None] + targets[key][0] - targets[key][1]}

    designs = {}
    for p in args.patch_sizes:
        targets = case_targets(noisy, clean, config, np.random.default_rng(7), p)
        designs |= decomposed(f"p {p}: patch-craft", targets, K)
    masks = {}  # design -> key -> [H, W, 1] float: the pixels its loss counts
    for ring in args.rings:
        p, hole = map(int, ring.split(":"))
        targets = ring_targets(noisy, clean, config, p, hole)
        designs |= decomposed(f"ring {p}:{hole}", targets, 1)
        # as a build holds them out: each frame's validation tiles, every pixel or those that
        # --validation-filter F keeps (--pixel-filters)
        for factor in [0.0, *args.pixel_filters] if args.pixel_filters else []:
            name = (f"ring {p}:{hole}: T, validation tiles" + (
                f", validation filter {factor:g}" if factor else ""))
            designs[name] = lambda key, targets=targets: targets[key][0]
            masks[name] = {key: tile_mask(noisy[key], t[0], config, factor)
                           for key, (t, _) in targets.items()}
    for spec in args.ring_frames:
        p, hole, ks = spec.split(":")
        targets = ring_frame_targets(noisy, clean, config, int(p), int(hole))
        for k in map(int, ks.split(",")):
            ranked = {key: (t[:k], tc[:k]) for key, (t, tc) in targets.items()}
            designs |= decomposed(f"ring {p}:{hole}, {k} best frames", ranked, k)
    designs["ideal"] = lambda key: clean[key][None] + fresh[key][:K]
    for k in sorted({1, draws} - {K}):
        designs[f"ideal, {k} draws"] = lambda key, k=k: clean[key][None] + fresh[key][:k]
    print(f"targets, {time.perf_counter() - started:.0f} s", flush=True)

    rows = []
    with torch.no_grad():
        for path in models:
            model, _ = load_model(path)
            model.eval()
            row = {"model": str(path.relative_to(out))}
            losses = {d: [] for d in designs}
            errors = []
            for key in fresh:
                x = torch.from_numpy(np.ascontiguousarray(noisy[key].transpose(2, 0, 1)))[None]
                output = model(x)[0].numpy().transpose(1, 2, 0)
                errors.append(np.mean((output - clean[key]) ** 2))
                for d, target in designs.items():
                    t = target(key)
                    bias = t.mean() - noisy[key].mean()
                    if d in masks:
                        m = masks[d][key]
                        losses[d].append(float(np.sum((output[None] - t + bias) ** 2 * m)
                                               / (m.sum() * t.shape[-1])))
                    else:
                        losses[d].append(np.mean((output[None] - t + bias) ** 2))
            row["psnr"] = float(np.mean([10 * np.log10(1 / e) for e in errors]))
            row["store's validation loss"], row["tiles psnr"] = logged(path)
            row.update({d: float(np.mean(v)) for d, v in losses.items()})
            rows.append(row)
    names = ["store's validation loss", *designs]
    result = {d: [round(spearman([r[d] for r in rows], [-r[truth] for r in rows]), 3)
                  for truth in ("tiles psnr", "psnr")] for d in names}
    (out / "terms.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Validation loss terms: {args.clip} {args.noise}, {len(rows)} models", "",
             "| targets | Spearman, PSNR on the store's held-out tiles | on every held-out "
             "frame |", "| --- | --- | --- |"]
    lines += [f"| {d} | {v[0]:.2f} | {v[1]:.2f} |" for d, v in result.items()]
    text = "\n".join(lines) + "\n"
    (out / "terms.md").write_text(text)
    print(text + f"total {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
