"""What a store holds, as text and pictures: the s_yr histogram and the store summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store as zstore
from .errors import InputError
from .statistics import TileFilter
from .tune import settle_commands, weak_evidence, weak_evidence_note


@dataclass
class Histogram:
    edges: np.ndarray          # [bins + 1]
    before: np.ndarray         # counts of every scored pair
    after: np.ndarray          # counts of the pairs both filters keep
    peak: float
    s_min: float
    mean_before: float
    mean_after: float
    scored: int
    kept: int
    filter: TileFilter


def s_yr_histogram(group, bins: int = 200) -> Histogram:
    """Histogram of s_yr over every scored pair, before and after filtering (Dask, out of core)."""
    import dask
    import dask.array as da

    tile_filter = zstore.read_filter(group)
    if tile_filter is None:
        raise InputError("the build has not reached the filter stage yet; run the build again")
    s_yr, r_mean = (da.from_zarr(a).ravel() for a in zstore.score_arrays(group))
    finite = da.isfinite(s_yr)
    kept = tile_filter.keeps(s_yr, r_mean)
    lo, hi = tile_filter.s_yr_range
    before, edges = da.histogram(da.where(finite, s_yr, np.nan), bins=bins, range=(lo, hi))
    after, _ = da.histogram(da.where(kept, s_yr, np.nan), bins=bins, range=(lo, hi))
    with zstore.reading(group, "stats/s_yr", "stats/r_mean"):
        before, after, total_before, total_after, n_before, n_after = dask.compute(
            before, after, da.where(finite, s_yr, 0).sum(), da.where(kept, s_yr, 0).sum(),
            finite.sum(), kept.sum())
    centers = (edges[1:] + edges[:-1]) / 2
    return Histogram(edges, before, after, float(centers[before.argmax()]), tile_filter.s_min,
                     float(total_before / max(n_before, 1)), float(total_after / max(n_after, 1)),
                     int(n_before), int(n_after), tile_filter)


def format_histogram(h: Histogram, width: int = 50, rows: int = 25) -> str:
    """Summary lines and an ASCII histogram (# kept, . dropped), coarsened to ``rows`` rows."""
    factor = max(1, len(h.before) // rows)
    n = len(h.before) // factor * factor
    before = h.before[:n].reshape(-1, factor).sum(axis=1)
    after = h.after[:n].reshape(-1, factor).sum(axis=1)
    edges = h.edges[:n + 1:factor]
    scale = width / max(before.max(), 1)
    f = h.filter
    lines = [
        f"scored pairs   {h.scored:>12,}",
        f"kept pairs     {h.kept:>12,}   ({h.kept / max(h.scored, 1):.1%})",
        f"peak           {h.peak:>12.4g}",
        f"s_min          {h.s_min:>12.4g}" + _s_min_note(h),
        f"mean before    {h.mean_before:>12.4g}   (peak - mean = {h.peak - h.mean_before:.3g})",
        f"mean after     {h.mean_after:>12.4g}   (peak - mean = {h.peak - h.mean_after:.3g})",
        f"r_mean window  [{f.r_low:.4g}, {f.r_high:.4g}] (mean +/- {f.mean_std:g} std),"
        f" center {f.r_center:.4g}",
        "",
        f"{'s_yr from':>12} {'count':>9}  (# kept, . dropped)",
    ]
    for i in range(len(before)):
        kept = int(round(after[i] * scale))
        dropped = int(round(before[i] * scale)) - kept
        marker = "  <- s_min" if edges[i] <= h.s_min < edges[i + 1] else ""
        lines.append(f"{edges[i]:>12.4g} {before[i]:>9}  {'#' * kept}{'.' * dropped}{marker}")
    return "\n".join(lines)


def _s_min_note(h: Histogram) -> str:
    """Why s_min cuts nothing, when it does not."""
    if h.s_min >= h.edges[0]:
        return ""
    if h.kept == h.scored:
        return "   (below every score: the store was built with --no-filter)"
    return "   (below every score: no negative tail to cut; only the r_mean window filters)"


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Lay out, write and close a figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_histogram(h: Histogram, path) -> Path:
    """PNG with the histogram before and after filtering, s_min and the peak marked."""
    plt = pyplot()
    centers = (h.edges[1:] + h.edges[:-1]) / 2
    width = h.edges[1] - h.edges[0]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.bar(centers, h.before, width=width, color="#c9c9c9", label=f"all scored ({h.scored:,})")
    ax.bar(centers, h.after, width=width, color="#2a7ab9", label=f"kept ({h.kept:,})")
    if h.edges[0] <= h.s_min <= h.edges[-1]:
        ax.axvline(h.s_min, color="#d62728", ls="--", label=f"s_min = {h.s_min:.3g}")
    else:  # -inf (nothing to cut) or the no-filter ablation: a line there would squash the plot
        ax.plot([], [], color="#d62728", ls="--", label="s_min below every score")
    ax.axvline(h.peak, color="black", ls=":", label=f"peak = {h.peak:.3g}")
    ax.axvline(h.mean_after, color="#2a7ab9", ls="-.", lw=1, label=f"kept mean = {h.mean_after:.3g}")
    ax.set_xlabel("s_yr = cov(y, target - y) per (tile, offset)")
    ax.set_ylabel("pairs")
    ax.set_title("Patch-craft tile filter")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _ranges(values: list[int]) -> str:
    """Sorted integers as ranges: [0, 1, 2, 5] -> '0-2, 5'."""
    runs, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            runs.append(f"{start}-{v}" if v > start else f"{v}")
            start = None
    return ", ".join(runs)


def store_info(path) -> str:
    """Parameters, sources, bursts, pairs, sizes on disk and s_min of a store, as text."""
    group = zstore.open_store(path)
    problems = zstore.check(path, chunks=False)  # every array's metadata: cheap
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise zstore.StoreDamaged(f"{problems[0]}{more}; {zstore.CHECK_HINT}", path)
    attrs = zstore.description(group)
    params = attrs.get("parameters", {})
    counts = attrs.get("counts", {})
    status = attrs.get("status")
    building = status == "building"
    if building:
        status += (" (being built, or its build was interrupted: run the same pcst-prep build "
                   "command again to finish it; the figures below are not final)")
    lines = [f"store          {path}", f"status         {status}",
             f"format         {attrs.get('format')} v{attrs.get('format_version')} "
             f"(pcst {attrs.get('package_version')})",
             f"pipeline       {params.get('pipeline')}",
             "parameters     " + ", ".join(f"{k}={v}" for k, v in params.items()
                                          if k != "pipeline"),
             f"input          {attrs.get('input_dir')}"]
    # a sequence's path is relative to the input; "." where the input is the sequence itself
    named = {".": Path(str(attrs.get("input_dir"))).name or "."}
    for source in attrs.get("sources", []):
        lines.append(f"  {named.get(source['path'], source['path'])}: {source['n_frames']} frames "
                     f"{source['height']}x{source['width']}x{source['channels']}")
    scored = zstore.scored_bursts(group)
    lines.append(f"bursts         {len(scored)} ({int(scored.sum())} scored)")
    f = zstore.read_filter(group)
    if f is not None:
        lines.append(f"pairs          {f.scored_pairs:,} scored, {f.kept_pairs:,} "
                     f"kept ({f.kept_pairs / max(f.scored_pairs, 1):.1%})")
        lines.append(f"s_min          {f.s_min:.5g}; r_mean window "
                     f"[{f.r_low:.4g}, {f.r_high:.4g}], center {f.r_center:.4g}")
    n, k, s, _, c = zstore.sample_shape(group)
    if n and zstore.format_version(group) == 1:
        lines.append(f"samples        {n:,} tiles x up to {k} targets "
                     f"({counts.get('valid_targets', '?')} targets), tile {s}x{s}x{c}" +
                     (", with clean tiles" if zstore.has_clean(group) else ""))
    elif n:
        lines.append(f"samples        {n:,} tiles, each with its kept offsets "
                     f"({counts.get('valid_targets', '?'):,} (tile, offset) pairs), tile "
                     f"{s}x{s}x{c}, crafted while training from the frames and nnf" +
                     (", with clean frames" if zstore.has_clean(group) else ""))
    tuning = attrs.get("tuning")
    if tuning:
        largest = tuning["candidates"][-1]["patch_size"]
        fits = ", ".join(f"p {c['patch_size']}: " + ("reference" if c["patch_size"] == largest
                                                      else f"{c['noise_fit']:.3f}")
                         for c in tuning["candidates"])
        lines.append(f"tuning         p {tuning['patch_size']} chosen automatically (noise sigma "
                     f"~{tuning['noise_sigma']:.1f}; noise fit {fits}; limit "
                     f"{tuning['fit_limit']:g})")
        fit_by_p = {c["patch_size"]: c["noise_fit"] for c in tuning["candidates"]}
        note = weak_evidence_note(tuning["patch_size"], fit_by_p)
        if note:
            lines.append(f"               {note}")
            if counts.get("validation_tiles"):
                other = weak_evidence(tuning["patch_size"], fit_by_p)[0]
                lines.append("               to settle it (give the build the first build's "
                             "other options too; --validation-from checks them):")
                lines += [f"                 {command}" for command in settle_commands(
                    str(path), attrs.get("input_dir"), params.get("pipeline"), other)]
            else:
                lines.append("               (a trial judges stores by their held-out tiles: "
                             "this store has none; build it with --holdout)")
        # the ring and hole used: only where the store holds ring validation targets
        rings = bool(counts.get("validation_tiles")) and params.get("validation_targets") == "ring"
        if "validation_hole" in tuning:
            lags = ", ".join(f"{c:.2f}" for c in tuning["noise_correlation"])
            lines.append(f"               noise correlation at lags 1 to "
                         f"{len(tuning['noise_correlation'])}: {lags}; validation hole "
                         f"{tuning['validation_hole']} recommended"
                         + (f", {params.get('validation_hole')} used" if rings else
                            " (no ring validation targets here yet)"
                            if building else
                            " (no ring validation targets here)"))
        if "validation_patch_size" in tuning and rings:  # absent before 2026-11-27
            lines.append(f"               noise sigma ~{tuning['noise_sigma']:.1f}: validation "
                         f"ring {tuning['validation_patch_size']} recommended, "
                         f"{params.get('validation_patch_size')} used")
    validation = counts.get("validation_tiles")
    if validation is not None:
        lines.append(f"validation     {validation:,} held-out tiles (never trained on)")
        for source, n in zstore.validation_sources(group).items():
            lines.append(f"               those of {n} held-out burst(s) copied from {source}")
        held = zstore.held_out_frames(group)
        if held:
            lines.append("held out       " + "; ".join(
                f"{named.get(path, path)}: frames {_ranges(frames)}"
                for path, frames in held.items())
                + " (0-based, in file order; never trained on: evaluate models on these, e.g. "
                "`pcst-train denoise MODEL INPUT OUT --frame N`)")
    lines.append(f"size on disk   {zstore.store_size(path) / 2 ** 20:.1f} MiB")
    lines.append("integrity      every array's metadata reads (pcst-prep check reads every chunk)")
    return "\n".join(lines)
