"""Reading finished run directories back, to put runs side by side (``pcst-train compare``)."""

from __future__ import annotations

import csv
from pathlib import Path

from pcst_prep import store as zstore
from pcst_prep.errors import InputError


def store_key(store) -> str:
    """Where a store lives, as checkpoints record it (``a.zarr`` and ``a.zarr/`` alike): to
    tell whether a run trained on a given store."""
    return str(zstore.location(store)).rstrip("/")


def summarise_run(run_dir) -> dict:
    """What a run directory says about itself: its store and settings (from final.pt or
    last.pt), its steps, and its validation figures (from log.csv): the best validation loss
    and its step, the last one, and the PSNR at those steps where it was measured; the
    lowest after step 0 (``trained_*``: step 0 judges the starting model, common to runs
    from one start) and step 0's own (``start_val_loss``); its ``seconds``."""
    from .checkpoints import read_checkpoint

    run_dir = Path(run_dir)
    log = run_dir / "log.csv"
    checkpoint = next((run_dir / n for n in ("final.pt", "last.pt") if (run_dir / n).exists()),
                      None)
    if not log.exists() or checkpoint is None:
        raise InputError("not a run directory (needs log.csv and final.pt or last.pt)", run_dir)
    state = read_checkpoint(checkpoint)
    parameters = (state.get("store") or {}).get("parameters") or {}
    config = state.get("train_config") or {}
    with open(log) as f:
        rows = list(csv.DictReader(f))
    validated = [r for r in rows if r.get("val_loss")]
    best = min(validated, key=lambda r: float(r["val_loss"])) if validated else None
    last = validated[-1] if validated else None
    trained = min((r for r in validated if int(r["step"]) > 0),
                  key=lambda r: float(r["val_loss"]), default=None)
    start = next((r for r in validated if int(r["step"]) == 0), None)

    def figure(row, key):
        return float(row[key]) if row and row.get(key) else None

    return {
        "run": str(run_dir), "store": (state.get("store") or {}).get("path"),
        "patch_size": parameters.get("patch_size"), "model": state.get("model"),
        "init": config.get("init"), "lr": config.get("lr"),
        "steps": max((int(r["step"]) for r in rows), default=0),
        "best_val_loss": figure(best, "val_loss"),
        "best_step": int(best["step"]) if best else None,
        "best_val_psnr": figure(best, "val_psnr"),
        "last_val_loss": figure(last, "val_loss"), "last_val_psnr": figure(last, "val_psnr"),
        "trained_val_loss": figure(trained, "val_loss"),
        "trained_step": int(trained["step"]) if trained else None,
        "trained_val_psnr": figure(trained, "val_psnr"),
        "start_val_loss": figure(start, "val_loss"),
        "seconds": max((float(r["seconds"]) for r in rows if r.get("seconds")), default=0.0),
        "validation_set": (state.get("validation_set") or {}).get("fingerprint"),
        # the error the validation loss averages (runs from before the option: squared)
        "validation_loss": config.get("validation_loss") or "mse",
    }


def validation_sets(summaries: list[dict]) -> list:
    """The distinct validation sets (fingerprints) of the validated runs that record one, in
    the runs' order; runs trained before fingerprints were recorded are left out."""
    return list(dict.fromkeys(s["validation_set"] for s in summaries
                              if s["best_val_loss"] is not None and s["validation_set"]))


def change_from_start(summary: dict) -> float | None:
    """The lowest validation loss after step 0 relative to the starting model's (step 0), as a
    fraction (-0.06: 6% lower; positive where training only made it worse), or None where
    either was not validated."""
    start, trained = summary.get("start_val_loss"), summary.get("trained_val_loss")
    return None if not start or trained is None else trained / start - 1.0


def format_comparison(summaries: list[dict]) -> str:
    """A table of runs, best validation loss first, each beside its starting model's (step 0)
    and the lowest after it relative to that (what training gained, or lost, judged on the
    held-out tiles alone); PSNR columns only where measured. Losses on different validation
    sets do not compare: the table says so and names each run's."""
    losses = list(dict.fromkeys(s["validation_loss"] for s in summaries
                                if s["best_val_loss"] is not None))
    ordered = sorted(summaries, key=lambda s: (s["best_val_loss"] is None,  # by loss, then
                                               losses.index(s["validation_loss"])  # its value
                                               if s["best_val_loss"] is not None else 0,
                                               s["best_val_loss"] or 0.0))
    with_psnr = any(s["best_val_psnr"] is not None for s in ordered)
    sets = validation_sets(ordered)
    header = ["run", "p", "steps", "best val loss", "at step", "last val loss",
              "start val loss", "trained vs start"]
    if with_psnr:
        header += ["PSNR at best", "PSNR last"]
    if len(losses) > 1:
        header += ["val. loss"]
    if len(sets) > 1:
        header += ["validation set"]
    lines = [header]

    def show(value, spec):
        return "-" if value is None else format(value, spec)

    for s in ordered:
        row = [s["run"], show(s["patch_size"], "d"), show(s["steps"], "d"),
               show(s["best_val_loss"], ".6g"), show(s["best_step"], "d"),
               show(s["last_val_loss"], ".6g"), show(s.get("start_val_loss"), ".6g"),
               show(change_from_start(s), "+.1%")]
        if with_psnr:
            row += [show(s["best_val_psnr"], ".2f"), show(s["last_val_psnr"], ".2f")]
        if len(losses) > 1:
            row += [s["validation_loss"] if s["best_val_loss"] is not None else "-"]
        if len(sets) > 1:
            row += [s["validation_set"] or ("unrecorded" if s["best_val_loss"] is not None
                                            else "-")]
        lines.append(row)
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header))]
    text = ["  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                      for i, (v, w) in enumerate(zip(r, widths))) for r in lines]
    note = ("\nPSNR: measured on the held-out tiles' clean versions (synthetic noise only); "
            "the ranking uses the validation loss alone." if with_psnr else "")
    if len(sets) > 1 or len(losses) > 1:
        note += ("\nwarning: these runs were validated on different held-out sets or with "
                 "different losses (last columns): only the losses of runs on the same set "
                 "compare (build their stores from the same input with the same --holdout, "
                 "--seed and validation options, and train them with the same "
                 "--validation-filter and --validation-loss)")
    unchanged = [s["run"] for s in ordered
                 if s["best_step"] == 0 and s["trained_val_loss"] is not None]
    if unchanged:
        note += ("\nnote: no validation after the start beat the starting model in "
                 + ", ".join(unchanged) + ": best.pt is that model unchanged")
    unrecorded = sum(s["best_val_loss"] is not None and not s["validation_set"]
                     for s in ordered)
    if 0 < unrecorded < len(ordered):
        note += (f"\nnote: {unrecorded} run(s) predate validation-set fingerprints, so "
                 "whether they were judged on the same held-out set as the others is not "
                 "checked")
    return "\n".join(text) + note
