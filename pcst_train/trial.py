"""Choosing between stores by short trial trainings judged by the clean-free validation loss
(``pcst-train trial``).

Where ``pcst-prep tune`` cannot tell (its report says that its evidence is weak and names
another p: :func:`pcst_prep.tune.weak_evidence`), the choice of p can be left to the data:
build a second store at that p, train both briefly from the same start, and keep the store
whose run reaches the lowest validation loss. On the 28 clip and noise cases of
docs/results.md, settling the 17 flagged ones so left every case within 0.18 dB of the best
p of a sweep, where tune's p alone missed by up to 0.48 dB.

Every store gets the same training (:data:`TRIAL_DEFAULTS` unless told otherwise: 300 steps
of batch 16 from the shipped UNet at lr 3e-4, validated every 50 steps, the settings under
which the choice was measured). The stores must share their validation set: the same
held-out tiles and targets, as stores built from the same input with the same ``--holdout``,
``--seed`` and validation options have whatever their p (checked by the set's fingerprint,
:func:`pcst_train.train.validation_fingerprint`). The cost is one such training per store on
top of their builds, for stores of 12 training bursts on a 2-core CPU in bfloat16: about
13 s each with AMX (an Intel Xeon), 25 to 38 s without (an AMD EPYC, Zen 4: the 17 trials of
docs/results.md's grid, 2026-11-27); the validation's share grows with the held-out tiles.

Run directories ``OUT/<i>_<store name>`` hold each training (as ``pcst-train`` writes them);
``OUT/trial.json`` the result, ``OUT/trial.png`` the validation losses against steps. Run
again after an interruption: finished trainings are kept, an unfinished one continues from
its ``last.pt``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

from pcst_prep import store as zstore
from pcst_prep.errors import InputError

from .config import BEFORE_OPTIONS, TrainConfig
from .data import open_training_store
from .runs import store_key, summarise_run

TRIAL_DEFAULTS = {"steps": 300, "lr": 3e-4, "validate_every": 50}


def run_name(index: int, store) -> str:
    """The run directory's name for the ``index``-th store: ``<index>_<store's name>``."""
    return f"{index}_{zstore.store_name(store) or 'store'}"


def _validation_set(store, pixel_filter: float, loss: str) -> str:
    from .train import validation_fingerprint

    group = open_training_store(store)
    if not zstore.validated_bursts(group):
        raise InputError("holds no validation set to judge a trial by (build it with --holdout)",
                         zstore.location(store))
    inputs, targets, _ = zstore.read_validation(group)
    return validation_fingerprint(inputs, targets, pixel_filter, loss)


# settings that do not change what a training learns: a rerun may differ in them
INCIDENTAL = ("device", "workers", "log_every", "keep_validated")


def _check_run(run_dir: Path, store, config: TrainConfig, fingerprint: str) -> None:
    """A run directory that an earlier trial left (final.pt, or last.pt of an interrupted
    training) must be this store's training with these settings, judged on this validation
    set: else one line naming the directory and what differs."""
    from .checkpoints import read_checkpoint

    path = next((run_dir / n for n in ("final.pt", "last.pt") if (run_dir / n).exists()), None)
    if path is None:
        return
    state = read_checkpoint(path)
    stored = (state.get("store") or {}).get("path")
    if stored is not None and store_key(stored) != store_key(store):
        raise InputError(f"holds a training on {stored}, not {store}: give the trial another "
                         "--out", run_dir)
    recorded = json.loads(json.dumps(state.get("train_config") or {}))
    if recorded:  # a run from before an option trained as it did then
        recorded = {**BEFORE_OPTIONS, **recorded}
    wanted = json.loads(json.dumps(asdict(config)))
    differ = [name for name in wanted if name not in INCIDENTAL
              and recorded.get(name) != wanted[name]]
    if differ:
        raise InputError(f"holds a training with other settings ({', '.join(differ)}: "
                         f"{', '.join(str(recorded.get(n)) for n in differ)}, not "
                         f"{', '.join(str(wanted[n]) for n in differ)}): give the trial another "
                         "--out", run_dir)
    found = (state.get("validation_set") or {}).get("fingerprint")
    if found != fingerprint:
        raise InputError("holds a training judged on another validation set (its store was "
                         "rebuilt?): give the trial another --out", run_dir)


def _reused(runs: list[dict]) -> str:
    """Words on the runs that an earlier call of the trial had finished (not trained again)."""
    reused = sum(bool(r.get("reused")) for r in runs)
    if not reused:
        return ""
    which = "both" if reused == len(runs) == 2 else f"{reused} of {len(runs)}"
    return f" ({which} finished by an earlier run of this trial, not trained again)"


def trial(stores, out_dir, config: TrainConfig, progress: bool = True) -> dict:
    """Train ``config`` on every store in ``stores`` into ``out_dir`` and rank the stores by
    their runs' lowest validation loss after step 0 (step 0 judges the common start).

    Returns a dict: ``chosen`` (the store whose run reached the lowest validation loss),
    ``improved`` (whether it improved on the starting model), ``runs`` (per store, best
    first: :func:`pcst_train.runs.summarise_run`'s summary, whose ``trained_*`` figures
    rank them, with the store and its run directory), ``validation_set`` (the shared
    fingerprint), ``train_config``
    and ``seconds`` (all trainings, earlier sessions' included).
    """
    from .train import train

    if len(stores) < 2:
        raise InputError("a trial compares at least two stores")
    config = config.as_trained()  # as train() records it
    keys = [store_key(store) for store in stores]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            raise InputError("is given twice: a trial compares different stores",
                             zstore.location(stores[index]))
    out_dir = Path(out_dir)
    fingerprint = None
    for store in stores:
        found = _validation_set(store, config.validation_filter, config.validation_loss)
        if fingerprint is None:
            fingerprint = found
        elif found != fingerprint:
            raise InputError(f"its validation set differs from {stores[0]}'s, so their "
                             "validation losses do not compare: build the stores from the same "
                             "input with the same --holdout, --seed and validation options",
                             zstore.location(store))
    run_dirs = [out_dir / run_name(index, store) for index, store in enumerate(stores)]
    for store, run_dir in zip(stores, run_dirs):  # before any training starts
        _check_run(run_dir, store, config, fingerprint)
    runs = []
    for store, run_dir in zip(stores, run_dirs):
        reused = (run_dir / "final.pt").exists()
        if not reused:
            train(store, run_dir, config,
                  resume="auto" if (run_dir / "last.pt").exists() else None, progress=progress)
        runs.append({**summarise_run(run_dir), "store": str(store), "run": str(run_dir),
                     "reused": reused})
    runs.sort(key=lambda r: (r["trained_val_loss"] is None, r["trained_val_loss"] or 0.0,
                             r["trained_step"] or 0))
    if any(r["trained_val_loss"] is None for r in runs):
        raise InputError("was never validated after step 0: give --validate-every at most "
                         "--steps", next(r["run"] for r in runs if r["trained_val_loss"] is None))
    # a run's best is at step 0 when its training never beat the common start
    improved = runs[0]["best_step"] != 0
    result = {"chosen": runs[0]["store"], "improved": improved, "runs": runs,
              "validation_set": fingerprint, "train_config": asdict(config),
              "seconds": sum(r["seconds"] for r in runs)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "trial.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_trial(result, out_dir / "trial.png")
    return result


def format_trial(result: dict) -> str:
    """The ranking, the choice and the cost, as text."""
    runs = result["runs"]
    with_psnr = any(r["trained_val_psnr"] is not None for r in runs)

    def show(value, spec):
        return "-" if value is None else format(value, spec)

    table = [["store", "p", "lowest val. loss", "at step", "seconds"]
             + (["PSNR there"] if with_psnr else [])]
    for r in runs:
        table.append([r["store"], show(r["patch_size"], "d"), show(r["trained_val_loss"], ".6g"),
                      show(r["trained_step"], "d"), f"{r['seconds']:.0f}"]
                     + ([show(r["trained_val_psnr"], ".2f")] if with_psnr else []))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                       for i, (v, w) in enumerate(zip(row, widths))) for row in table]
    first, second = runs[0], runs[1]
    lines += ["", f"chosen: {result['chosen']} (the lowest validation loss after step 0, "
              f"{first['trained_val_loss']:.6g} at step {first['trained_step']}; "
              f"{second['trained_val_loss'] / first['trained_val_loss'] - 1:.2%} below the next)"
              f"; trainings took {result['seconds']:.0f} s" + _reused(runs)]
    best = Path(first["run"]) / "best.pt"
    lines.append(f"its model: {best} (the lowest validation loss; denoise with it as it is, or "
                 f"train longer from it: pcst-train {shlex.quote(first['store'])} --out RUN_DIR "
                 f"--init {shlex.quote(str(best))})")
    if not result["improved"]:
        lines.append("warning: no store's training improved on the starting model's validation "
                     "loss: the choice says little (try more --steps or a lower --lr)")
    if with_psnr:
        lines.append("PSNR: measured on the held-out tiles' clean versions (synthetic noise "
                     "only); the choice uses the validation loss alone.")
    return "\n".join(lines)


def plot_trial(result: dict, png_path) -> Path:
    """PNG: each store's validation loss against steps, the chosen one marked, and the
    starting model's (step 0, the same for every store) as a dotted line."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    start = None
    for run in result["runs"]:
        with open(Path(run["run"]) / "log.csv") as f:
            points = [(int(r["step"]), float(r["val_loss"])) for r in csv.DictReader(f)
                      if r.get("val_loss")]
        start = next((loss for step, loss in points if step == 0), start)
        chosen = run["store"] == result["chosen"]
        p = f"p {run['patch_size']}, " if run.get("patch_size") else ""
        ax.plot(*zip(*points), "o-", ms=3, lw=2.0 if chosen else 1.0,
                label=f"{Path(run['run']).name} ({p}lowest {run['trained_val_loss']:.4g})"
                + ("  <- chosen" if chosen else ""))
    if start is not None:
        ax.axhline(start, color="black", ls=":", lw=1, label=f"the starting model ({start:.4g})")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (held out, clean-free)")
    ax.set_title("pcst-train trial: the lowest validation loss after step 0 wins")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
