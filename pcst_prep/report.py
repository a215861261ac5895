"""What a store holds, as text and pictures: the s_yr histogram and the store summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .statistics import kept_mask
from .store import open_store, store_size


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
    filter: dict


def s_yr_histogram(group, bins: int = 200) -> Histogram:
    """Histogram of s_yr over every scored pair, before and after filtering (Dask, out of core)."""
    import dask
    import dask.array as da

    filter_ = group.attrs.get("filter")
    if filter_ is None:
        raise InputError("the build has not reached the filter stage yet; run the build again")
    s_yr = da.from_zarr(group["stats/s_yr"]).ravel()
    r_mean = da.from_zarr(group["stats/r_mean"]).ravel()
    finite = da.isfinite(s_yr)
    kept = kept_mask(s_yr, r_mean, filter_)
    lo, hi = filter_["s_yr_range"]
    before, edges = da.histogram(da.where(finite, s_yr, np.nan), bins=bins, range=(lo, hi))
    after, _ = da.histogram(da.where(kept, s_yr, np.nan), bins=bins, range=(lo, hi))
    before, after, total_before, total_after, n_before, n_after = dask.compute(
        before, after, da.where(finite, s_yr, 0).sum(), da.where(kept, s_yr, 0).sum(),
        finite.sum(), kept.sum())
    centres = (edges[1:] + edges[:-1]) / 2
    return Histogram(edges, before, after, float(centres[before.argmax()]), filter_["s_min"],
                     float(total_before / max(n_before, 1)), float(total_after / max(n_after, 1)),
                     int(n_before), int(n_after), filter_)


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
        f"s_min          {h.s_min:>12.4g}",
        f"mean before    {h.mean_before:>12.4g}   (peak - mean = {h.peak - h.mean_before:.3g})",
        f"mean after     {h.mean_after:>12.4g}   (peak - mean = {h.peak - h.mean_after:.3g})",
        f"r_mean window  [{f['r_low']:.4g}, {f['r_high']:.4g}] (mean +/- {f['mean_std']:g} std),"
        f" centre {f['r_center']:.4g}",
        "",
        f"{'s_yr from':>12} {'count':>9}  (# kept, . dropped)",
    ]
    for i in range(len(before)):
        kept = int(round(after[i] * scale))
        dropped = int(round(before[i] * scale)) - kept
        marker = "  <- s_min" if edges[i] <= h.s_min < edges[i + 1] else ""
        lines.append(f"{edges[i]:>12.4g} {before[i]:>9}  {'#' * kept}{'.' * dropped}{marker}")
    return "\n".join(lines)


def plot_histogram(h: Histogram, path) -> Path:
    """PNG with the histogram before and after filtering, s_min and the peak marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = (h.edges[1:] + h.edges[:-1]) / 2
    width = h.edges[1] - h.edges[0]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.bar(centres, h.before, width=width, color="#c9c9c9", label=f"all scored ({h.scored:,})")
    ax.bar(centres, h.after, width=width, color="#2a7ab9", label=f"kept ({h.kept:,})")
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
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def store_info(path) -> str:
    """Parameters, sources, bursts, pairs, sizes on disk and s_min of a store, as text."""
    group = open_store(path)
    attrs = group.attrs.asdict()
    params = attrs.get("parameters", {})
    counts = attrs.get("counts", {})
    filter_ = attrs.get("filter")
    lines = [f"store          {path}", f"status         {attrs.get('status')}",
             f"format         {attrs.get('format')} v{attrs.get('format_version')} "
             f"(pcst {attrs.get('package_version')})",
             f"pipeline       {params.get('pipeline')}",
             "parameters     " + ", ".join(f"{k}={v}" for k, v in params.items()
                                          if k != "pipeline"),
             f"input          {attrs.get('input_dir')}"]
    for source in attrs.get("sources", []):
        lines.append(f"  {source['path']}: {source['n_frames']} frames "
                     f"{source['height']}x{source['width']}x{source['channels']}")
    n_bursts = group["bursts/scored"].shape[0]
    lines.append(f"bursts         {n_bursts} ({int(group['bursts/scored'][:].sum())} scored)")
    if filter_:
        lines.append(f"pairs          {filter_['scored_pairs']:,} scored, {filter_['kept_pairs']:,} "
                     f"kept ({filter_['kept_pairs'] / max(filter_['scored_pairs'], 1):.1%})")
        lines.append(f"s_min          {filter_['s_min']:.5g}; r_mean window "
                     f"[{filter_['r_low']:.4g}, {filter_['r_high']:.4g}], "
                     f"centre {filter_['r_center']:.4g}")
    if "samples/input" in group:
        shape = group["samples/targets"].shape
        lines.append(f"samples        {shape[0]:,} tiles x up to {shape[1]} targets "
                     f"({counts.get('valid_targets', '?')} targets), tile "
                     f"{shape[2]}x{shape[3]}x{shape[4]}" +
                     (", with clean tiles" if "samples/clean" in group else ""))
    lines.append(f"size on disk   {store_size(path) / 2 ** 20:.1f} MiB")
    return "\n".join(lines)
