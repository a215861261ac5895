"""The dataset build: plan, then the three stages of :mod:`pcst_prep.stages` in order (and the
held-out bursts' validation tiles).

Every stage skips work whose completion flag is set, so an interrupted build started again
with the same command continues where it stopped and ends with the same store.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from . import store as zstore
from .config import BuildConfig
from .errors import InputError
from .plan import plan_bursts, tile_grid
from .runner import Runner
from .tune import (MIN_HOLE, RING_SIGMA, RING_SIZES, estimate_noise, estimate_noise_correlation,
                   recommend_hole, recommend_ring, reference_size, smallest_side, tune,
                   TuneReport, weak_evidence_note)
from .stages import (burst_tiles, choose_samples, compute_filter, forget_cached_burst,
                     frame_jobs, frame_layout, materialise_chunk, score_burst, store_frames,
                     validation_burst)


@dataclass
class BuildSummary:
    store: str
    bursts: int
    scored_pairs: int
    kept_pairs: int
    samples: int
    s_min: float
    seconds: float
    resumed: bool
    validation_tiles: int
    was_complete: bool = False  # the store was finished already: nothing was done


def build(input_dir, store_path, config: BuildConfig, *, workers: int = 1,
          scheduler: str | None = None, overwrite: bool = False, skip_bad: bool = False,
          progress: bool = True, validation_from=None) -> BuildSummary:
    """Build (or resume building) a filtered training store from a directory of sequences.

    Parameters
    ----------
    input_dir : path
        Video files and frame folders (see data/README.md).
    store_path : path or URL
        The Zarr store to write: a directory, or an fsspec URL (``s3://bucket/run.zarr``).
    config : BuildConfig
        ``patch_size="auto"``: chosen first by :func:`pcst_prep.tune.tune`, recorded with its
        evidence in the store's ``tuning`` attribute.
    workers : int
        1: run in this process, Numba using every core. N > 1: a local cluster of N worker
        processes, each with cores / N Numba threads.
    scheduler : str, optional
        Address of an existing dask.distributed scheduler (``tcp://host:port``); the store
        must then be reachable from every worker (a shared path, or an object store URL).
    overwrite : bool
        Replace an existing store built with other settings.
    skip_bad : bool
        Skip unusable sequences with a warning instead of stopping.
    progress : bool
        Progress bars on a terminal.
    validation_from : path or URL, optional
        A finished store of the same input whose build differed at most in the patch size
        (the other store of a ``pcst-train trial``): its held-out bursts' validation tiles are
        copied instead of computed, being the ones this build would compute. Any other
        difference is refused before anything is written.
    """
    started = time.perf_counter()
    input_dir, store_path = Path(input_dir).resolve(), zstore.location(store_path)
    try:
        return _build(input_dir, store_path, config, started, workers=workers,
                      validation_from=validation_from,
                      scheduler=scheduler, overwrite=overwrite, skip_bad=skip_bad,
                      progress=progress)
    except OSError as exc:  # a write deep inside Zarr (a full disk, say) names no file
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(store_path)) from exc
        raise


def _auto_validation(plan, config: BuildConfig, tuning, donor=None,
                     donor_path=None) -> BuildConfig:
    """``--validation-patch-size auto`` and ``--validation-hole auto`` resolved: the ring that
    the noise's level asks for and the hole that covers its correlation length. From the
    store whose validation tiles the build copies (``donor``: its set, ring and hole included,
    when its validation targets, and any ring or hole given, are this build's; else the copy
    check names the difference), from tune's report (with ``--patch-size auto``) or measured
    here on a sample of the training bursts, as tune would; the smaller ring (the validation
    targets' p) and hole when the build has no ring validation targets."""
    ring_auto, hole_auto = (config.validation_patch_size == "auto",
                            config.validation_hole == "auto")
    if not (ring_auto or hole_auto):
        return config
    if config.validation_targets != "ring" or not plan.validation:
        return config.replace(**({"validation_patch_size": RING_SIZES[0]} if ring_auto else {}),
                              **({"validation_hole": MIN_HOLE} if hole_auto else {}))
    stored = (donor.attrs.get("fingerprint") or {}).get("parameters", {}) if donor else {}
    if (isinstance(stored.get("validation_hole"), int)
            and isinstance(stored.get("validation_patch_size"), int)
            and stored.get("validation_targets") == config.validation_targets
            and all(getattr(config, k) in ("auto", stored[k])
                    for k in ("validation_patch_size", "validation_hole"))):
        ring, hole = stored["validation_patch_size"], stored["validation_hole"]
        print(f"0/3 validation ring: {ring} x {ring}, hole {hole} x {hole} (those of the "
              f"validation tiles copied from {donor_path})", file=sys.stderr)
        return config.replace(validation_patch_size=ring, validation_hole=hole)
    side = smallest_side(plan.bursts + plan.validation)
    reference = reference_size(plan.bursts + plan.validation)  # tune's, as tune measures
    if tuning is not None:
        sigma, correlation = tuning.noise_sigma, tuning.noise_correlation
    elif ring_auto:
        sigma, correlation = estimate_noise(plan.bursts, config, patch_size=reference)
    else:
        sigma, correlation = None, estimate_noise_correlation(plan.bursts, config,
                                                              patch_size=reference)
    ring = recommend_ring(sigma, side) if ring_auto else config.validation_patch_size
    hole = recommend_hole(correlation, window=ring) if hole_auto else config.validation_hole
    why = []
    if ring_auto:
        capped = (f"; the frames' {side}-pixel side allows no more"
                  if ring < recommend_ring(sigma) else "")
        why.append(f"validation ring: {ring} x {ring} (noise sigma ~{sigma:.1f} of 255: the "
                   f"ring of {RING_SIZES[1]} from {RING_SIGMA:g} on{capped})")
    if hole_auto:
        why.append(f"validation hole: {hole} x {hole} (from the noise's correlation)")
    print("0/3 " + "; ".join(why) + "; pcst-prep tune shows the evidence", file=sys.stderr)
    return config.replace(validation_patch_size=ring, validation_hole=hole)


AUTO_CHOSEN = ("patch_size", "validation_patch_size", "validation_hole")  # "auto" settings


def _recorded_tuning(store_path, config: BuildConfig, plan) -> TuneReport | None:
    """tune's report as the store at ``store_path`` recorded it, where that store is this
    build of this input (an interrupted build resumed, a finished one run again): tune reads
    only the input and these settings, so it would find the same again, after minutes of
    matching on large frames. None where there is no such store or record."""
    import json

    try:
        if not zstore.is_pcst_store(zstore.location(store_path)):
            return None
        attrs = zstore.description(zstore.open_store(store_path))
    except InputError:
        return None
    recorded, stored = attrs.get("tuning"), attrs.get("fingerprint") or {}

    def settings(parameters: dict) -> dict:
        return {k: v for k, v in parameters.items() if k not in AUTO_CHOSEN}

    now = json.loads(json.dumps({"parameters": settings(config.build_defining()),
                                 "sources": plan.sources, "inputs": plan.inputs}))
    then = {"parameters": settings(stored.get("parameters") or {}),
            "sources": stored.get("sources"), "inputs": stored.get("inputs")}
    if not recorded or now != then:
        return None
    try:
        return TuneReport.from_attrs(recorded)
    except (TypeError, KeyError):  # recorded by a version whose report had other fields
        return None


def _build(input_dir: Path, store_path, config: BuildConfig, started: float, *, workers,
           scheduler, overwrite, skip_bad, progress, validation_from=None) -> BuildSummary:
    zstore.refuse_if_building(store_path)  # before the planning and tuning, not after them
    plan = plan_bursts(input_dir, config, skip_bad, verify=True, progress=progress)
    tuning = None
    if config.patch_size == "auto":  # a plan's bursts do not depend on p
        tuning = None if overwrite else _recorded_tuning(store_path, config, plan)
        again = tuning is not None
        tuning = tuning or tune(input_dir, config, plan=plan)
        config = config.replace(patch_size=tuning.patch_size)
        note = weak_evidence_note(tuning.patch_size, {c.patch_size: c.noise_fit
                                                      for c in tuning.candidates})
        print(f"0/3 tune: patch size {tuning.patch_size} (noise sigma ~{tuning.noise_sigma:.1f}; "
              "pcst-prep tune shows the evidence)" + (f"; {note}" if note else "")
              + ("; as this store's build recorded it, not tuned again" if again else ""),
              file=sys.stderr)
    donor = _open_donor(validation_from, plan, store_path)
    config = _auto_validation(plan, config, tuning, donor, validation_from)
    bursts = plan.bursts
    for problem in plan.skipped:
        warnings.warn(f"skipped {problem}", stacklevel=2)
    fingerprint = {
        "parameters": config.build_defining(),
        "input_dir": str(input_dir),
        "sources": plan.sources,
        "bursts": [[b.source, list(b.frame_indices), b.center] for b in bursts],
        "validation": [[b.source, list(b.frame_indices), b.center] for b in plan.validation],
        "inputs": plan.inputs,
    }
    _check_donor(donor, fingerprint, validation_from)
    layout = {"n_bursts": len(bursts), "n_offsets": config.n_offsets,
              "max_tiles": int(max(np.prod(tile_grid(b, config)) for b in bursts)),
              "channels": plan.channels, "format_version": config.store_format}
    with zstore.writer_lock(store_path):  # one writer at a time
        runner = Runner(workers, scheduler, progress)  # connect first: a bad address fails here
        try:
            group, resumed = zstore.prepare(store_path, fingerprint, layout, overwrite)
            was_complete = resumed and group.attrs.get("status") == "complete"
            zstore.describe(group, config.to_dict(), str(input_dir), plan.sources, plan.channels,
                            None if tuning is None else tuning.to_attrs())
            if not resumed:
                zstore.write_burst_table(group, [b.source for b in bursts],
                                         [list(b.frame_indices) for b in bursts],
                                         [b.center for b in bursts],
                                         [tile_grid(b, config) for b in bursts])
                zstore.write_validation_table(group, plan.validation)

            path = str(store_path)
            scored = zstore.scored_bursts(group)
            before = int(sum(scored[b.index] for b in bursts))  # by an interrupted build
            runner.run(partial(score_burst, path, config),
                       [b for b in bursts if not scored[b.index]],
                       label="1/3 match and score bursts" + (
                           f" ({before} of {len(bursts)} scored before this run)"
                           if before else ""), unit="burst")

            tile_filter = zstore.read_filter(group)
            if tile_filter is None:
                tile_filter = compute_filter(group, config)
                if config.store_format == 1:
                    table = choose_samples(group, bursts, config, tile_filter)
                    zstore.write_samples_table(group, table, tile_filter)
                else:
                    counts = dict(runner.run(partial(burst_tiles, path, config, tile_filter),
                                             bursts, label="2/3 tile table", unit="burst"))
                    if not sum(counts.values()):
                        raise InputError("the filter kept no training tile; check the input "
                                         "and parameters")
                    zstore.finish_tiles(group, [counts[b.index] for b in bursts], tile_filter)
            print(f"2/3 filter: s_min {tile_filter.s_min:.4g}, kept {tile_filter.kept_pairs:,} of "
                  f"{tile_filter.scored_pairs:,} (tile, offset) pairs", file=sys.stderr)
            n_samples = zstore.n_samples(group)
            if config.store_format == 1:
                n_chunks = zstore.create_sample_arrays(group, n_samples, config.targets_per_tile,
                                                       config.tile_size, plan.channels,
                                                       with_clean=config.noise != "none")
                done = zstore.materialised_chunks(group)
                runner.run(partial(materialise_chunk, path, config, bursts),
                           [c for c in range(n_chunks) if not done[c]],
                           label="3/3 craft targets", unit="chunk")
            else:
                _create_source_arrays(group, plan, bursts, config)
                runner.run(partial(store_frames, path, config),
                           frame_jobs(bursts, partial(zstore.written_frames, group)),
                           label="3/3 store frames", unit="task")
            if donor is not None:
                _copy_validation(donor, group, validation_from, plan.validation)
            validated = zstore.validated_bursts(group)
            runner.run(partial(validation_burst, path, config),
                       [b for b in plan.validation if b.index not in validated],
                       label="held-out bursts: validation targets", unit="burst")
        finally:
            runner.close()
            forget_cached_burst()

        counts = {"bursts": len(bursts), "scored_pairs": tile_filter.scored_pairs,
                  "kept_pairs": tile_filter.kept_pairs, "samples": int(n_samples),
                  "valid_targets": (int(zstore.valid_targets(group).sum())
                                    if config.store_format == 1 else tile_filter.kept_pairs),
                  "validation_tiles": zstore.n_validation_tiles(group)}
        zstore.finish(group, counts, config.keep_nnf)
        return BuildSummary(str(store_path), len(bursts), counts["scored_pairs"],
                            counts["kept_pairs"], counts["samples"], tile_filter.s_min,
                            time.perf_counter() - started, resumed, counts["validation_tiles"],
                            was_complete)


def _open_donor(path, plan, store_path):
    """The finished store whose validation tiles this build may copy (None without
    ``path``); :func:`_check_donor` says whether they are the ones it would compute."""
    if path is None:
        return None
    if not plan.validation:
        raise InputError("--validation-from: this build holds no bursts out (--holdout 0)")
    if zstore.location(path) == store_path:
        raise InputError("--validation-from names the store being built; give the other store",
                         path)
    return zstore.open_store(path, complete=True)


def _check_donor(donor, fingerprint: dict, path):
    """Refuse, with the reason, a donor whose validation tiles are not this build's."""
    if donor is None:
        return
    differences = zstore.validation_differences(donor, fingerprint)
    if differences is not None:
        raise InputError(f"--validation-from: its validation tiles were built with different "
                         f"{differences}; only the patch size may differ", path)


def _copy_validation(donor, group, donor_path, held_out):
    """Copy the held-out bursts' validation tiles that ``group`` lacks from ``donor``."""
    have, offer = zstore.validated_bursts(group), zstore.validated_bursts(donor)
    copied = [b.index for b in held_out if b.index not in have and b.index in offer]
    source = str(zstore.location(donor_path))
    for burst in copied:
        zstore.write_validation_burst(group, burst, *zstore.read_validation_burst(donor, burst),
                                      copied_from=source)
    if copied:
        print(f"held-out bursts: validation tiles of {len(copied)} copied from {donor_path}",
              file=sys.stderr)


def _create_source_arrays(group, plan, bursts, config: BuildConfig):
    """Format 2: the frame arrays of every sequence a training burst uses (shape and sample
    type from one decoded frame)."""
    first = {}
    for burst in bursts:
        first.setdefault(burst.source, burst)
    for source, burst in sorted(first.items()):
        if f"sources/{source:04d}/written" in group:
            continue
        shape, dtype = frame_layout(burst.sequence, burst.frame_indices[0])
        zstore.create_source_arrays(group, source, plan.sources[source]["n_frames"], shape,
                                    dtype, noisy=config.noise != "none")
