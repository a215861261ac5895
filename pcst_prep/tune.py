"""Choosing the patch size p from the noisy input alone (``pcst-prep tune``, ``--patch-size
auto``), and the evidence for the choice.

Why p matters: a match is the candidate patch nearest to the input's patch, noise included.
Among similar patches, the search prefers those whose noise resembles the input's, so the
target's noise n' correlates with the input's noise n. Small patches have few independent
noise samples and many candidates fit them: the correlation grows as p shrinks, and the
network then learns to keep part of the noise. Large patches fit the noise less but fit the
scene worse (motion, deformation), which costs too.

What the data says: over a tile, s_yr = cov(y, t - y). With t = x + n' and y = x + n,
s_yr = -var(n) + cov(n, n') (+ content terms, which make the histogram's negative tail): the
more the matches fit the noise, the closer the good matches' s_yr comes to zero from below.
Their location is the peak of the s_yr histogram (where the filter centres what it keeps;
neither the tail nor the filter's cut moves it). With the largest candidate as the reference
(whose fit is the smallest), the *noise fit* of p is

    fit(p) = 1 - peak(s_yr at p) / peak(s_yr at p_max),

the share of the noise variance that the targets at p copy from the input beyond what the
largest patches copy. tune picks the smallest p whose fit is at most ``fit_limit``: the
smallest patches that do not fit the noise. Every figure comes from the noisy frames (with
synthetic noise, from the noise the build would add); clean frames are never read.

The noise's correlation length sets the hole of the ring validation targets (``--validation-
hole``): the ring must not see the pixels whose noise correlates with the matched pixel's.
It is measured on r = t - y at the largest p (where the targets fit the noise least): for
independent noise draws n, n' of the same kind, r = n' - n has the noise's own correlation.
Pooled over a frame, the targets' content error (a few blocks with edges or motion, where r
is large and smooth) adds a correlation of its own; the median of the per-block correlations
over 25 x 25 blocks is the noise's (docs/results.md: within 0.10 of the true noise's at every
lag on 18 clip and noise cases, 0.05 in 17, where the pooled figure was up to 0.49 too high).

The noise's level sets the ring's size (``--validation-patch-size auto``), as it sets p: under
strong noise a small ring is matched by its noise as much as by the scene, and the ring
targets' content error then misranks models; a larger ring is matched by the scene, but under
weak noise it fits the scene worse (motion, deformation over a wider window). On the grid of
docs/results.md a ring of 25 ranked models better than 15 in 9 of the 10 cases whose noise
tune reads at sigma 19 or more (-0.01 to +0.08 in Spearman), alike at sigma 10 to 15 and
worse on the weak-noise case measured (-0.03 at sigma 6); the threshold sits between the
medium noises' 12 to 15 and the strong ones' 19 to 27.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store as zstore
from .config import RING_SIZES, BuildConfig
from .errors import InputError
from .progress import interrupt_between

CANDIDATES = (15, 25, 35, 45)
FIT_LIMIT = 0.02  # set from the experiment of docs/results.md (benchmarks/clean_free.py)
CORRELATION_LAGS = (1, 2, 3, 4, 5, 6)
CORRELATION_BLOCK = 25
HOLE_CORRELATION = 0.4  # lags whose noise correlation reaches this go inside the hole
MIN_HOLE = 3
RING_SIGMA = 18.0  # noise sigma (0-255 scale) from which the larger ring is recommended


@dataclass(frozen=True)
class Candidate:
    """The evidence for one patch size, over the sampled bursts."""

    patch_size: int
    peak_s_yr: float     # the peak of the s_yr histogram
    kept_share: float    # share of the scored pairs the filter keeps
    noise_fit: float     # see the module docstring
    at_radius: float     # share of matches at the edge of the dense search window


@dataclass(frozen=True)
class TuneReport:
    """What ``pcst-prep tune`` found and recommends; stored as a store's ``tuning`` attr."""

    patch_size: int
    candidates: list[Candidate]
    noise_sigma: float           # noise std on the 0-255 scale, from -peak s_yr at p_max
    noise_correlation: list[float]  # of t - y at lags CORRELATION_LAGS: see noise_correlation
    fit_limit: float
    sampled_bursts: int
    search: str                  # recommended search: dense, or pyramid for large motion
    mean_std: float              # recommended r_mean window
    validation_hole: int         # recommended hole of ring validation targets
    validation_patch_size: int   # recommended window of ring validation targets

    def to_attrs(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs: dict) -> "TuneReport":
        """The report as :meth:`to_attrs` wrote it (TypeError where its fields differ)."""
        values = dict(attrs)
        values["candidates"] = [Candidate(**c) for c in values["candidates"]]
        return cls(**values)

    def settings(self) -> dict:
        """The build parameters it recommends."""
        return {"patch_size": self.patch_size, "search": self.search, "mean_std": self.mean_std,
                "validation_hole": self.validation_hole,
                "validation_patch_size": self.validation_patch_size}


def _sample(bursts: list, n: int) -> list:
    """Up to ``n`` of ``bursts``, spread over them, among those whose center is the middle
    frame (where there are any). A build that replicates (every frame of a burst once the
    center) also centers bursts on their first and last frames, matched against frames up to
    M - 1 away: their larger content error reads as noise fit and noise (on bikes with sigma-5
    i.i.d. noise, sigma 6.2 and a noise fit of 0.23 at p 35 against 5.2 and 0.007 from the
    middle frames). The middle frames' evidence is the one docs/results.md validates."""
    middle = [b for b in bursts if b.center == len(b.frame_indices) // 2] or bursts
    if len(middle) <= n:
        return middle
    return [middle[int(i)] for i in np.linspace(0, len(middle) - 1, n).round()]


def histogram_peak(values: np.ndarray, bins: int = 200, smooth: int = 7) -> float:
    """The peak of a histogram of ``values`` (between their 1st and 99th percentiles, counts
    smoothed over ``smooth`` bins), at its bin's center."""
    values = values[np.isfinite(values)]
    low, high = np.percentile(values, [1, 99])
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    counts = np.convolve(counts, np.ones(smooth) / smooth, mode="same")
    top = int(counts.argmax())
    return float((edges[top] + edges[top + 1]) / 2)


def block_correlations(r: np.ndarray, lags=CORRELATION_LAGS,
                       block: int = CORRELATION_BLOCK) -> np.ndarray:
    """[n_blocks, 2, len(lags)]: the correlation of ``r`` (H x W) at each lag, horizontally
    (``[:, 0]``) and vertically (``[:, 1]``), within each ``block`` x ``block`` block (its mean
    removed; blocks that do not fit whole are left out, blocks where r is constant are NaN)."""
    r = np.asarray(r, np.float64)
    if max(lags) >= block:
        raise ValueError(f"lags must be smaller than the block ({block}), got {max(lags)}")
    n_rows, n_cols = r.shape[0] // block, r.shape[1] // block
    blocks = (r[:n_rows * block, :n_cols * block]
              .reshape(n_rows, block, n_cols, block).transpose(0, 2, 1, 3)
              .reshape(n_rows * n_cols, block, block))
    blocks = blocks - blocks.mean(axis=(1, 2), keepdims=True)
    energy = np.mean(blocks * blocks, axis=(1, 2))
    out = np.full((len(blocks), 2, len(lags)), np.nan)
    flat = energy > 1e-12 * max(float(energy.max(initial=0.0)), 1e-300)
    b, e = blocks[flat], energy[flat]
    for i, lag in enumerate(lags):
        out[flat, 0, i] = np.mean(b[:, :, lag:] * b[:, :, :-lag], axis=(1, 2)) / e
        out[flat, 1, i] = np.mean(b[:, lag:, :] * b[:, :-lag, :], axis=(1, 2)) / e
    return out


def noise_correlation(correlations: np.ndarray) -> list[float]:
    """The noise's correlation at each lag from :func:`block_correlations` (of one frame's
    residual, or of several concatenated): the median over blocks, the larger of the two axes
    (the hole is square, so it must cover the longer one)."""
    median = np.nanmedian(correlations, axis=0)
    return [float(v) for v in np.max(median, axis=0)]


def recommend_hole(correlation, lags=CORRELATION_LAGS, threshold: float = HOLE_CORRELATION,
                   window: int | None = None) -> int:
    """The side of the ring validation targets' hole: the smallest odd square (at least
    MIN_HOLE) that covers every lag whose correlation reaches ``threshold``; at most the
    largest odd side below ``window`` (the validation patch size), if given."""
    reached = [lag for lag, c in zip(lags, correlation) if c >= threshold]
    hole = max(MIN_HOLE, 2 * max(reached, default=0) + 1)
    if window is not None:
        hole = min(hole, window - 2 if window % 2 else window - 1)
    return hole


def smallest_side(bursts: list) -> int:
    """The smaller side of the smallest frames among ``bursts``."""
    return min(min(b.height, b.width) for b in bursts)


def sigma_from_peak(peak: float) -> float:
    """The noise's standard deviation on the 0-255 scale from the peak of the s_yr histogram
    at the largest p (about -var(n) there: see the module docstring)."""
    return float(np.sqrt(max(-peak, 0.0)) * 255)


def recommend_ring(noise_sigma: float, side: int | None = None) -> int:
    """The window of the ring validation targets for noise of ``noise_sigma`` (0-255 scale):
    the larger ring from ``RING_SIGMA`` on (see the module docstring), never wider than the
    frames' smaller ``side`` allows (an odd window that fits)."""
    ring = RING_SIZES[1] if noise_sigma >= RING_SIGMA else RING_SIZES[0]
    if side is not None:
        ring = min(ring, side if side % 2 else side - 1)
    return ring


def residual(noisy: np.ndarray, center: int, config: BuildConfig, nnf=None) -> np.ndarray:
    """t - y at offset (0, 0) for the burst's patch-craft target at ``config.patch_size``
    (channels averaged): the residual whose correlation tune measures. ``nnf``: the burst's,
    if already matched."""
    from .targets import PatchCraft, craft_region

    kind = PatchCraft()
    if nnf is None:
        nnf = kind.match(noisy, center, config)
    target = craft_region(kind.prepare(noisy, center, config), nnf, config.patch_size, (0, 0),
                          slice(None), slice(None))
    return (target - noisy[center]).mean(axis=-1)


def reference_size(bursts: list, candidates=CANDIDATES) -> int | None:
    """The largest candidate p that fits the frames of every burst in ``bursts`` (None where
    none fits): tune's reference p, at which it measures the noise's correlation."""
    side = smallest_side(bursts)
    return max((p for p in candidates if p <= side), default=None)


def _matched_sample(bursts: list, config: BuildConfig, n_bursts: int, patch_size: int | None):
    """Up to ``n_bursts`` of ``bursts`` (as tune samples them), loaded, with the settings of
    the dense search at ``patch_size`` (by default tune's reference p)."""
    from .stages import load_burst

    sample = _sample(bursts, n_bursts)
    side = smallest_side(sample)
    if patch_size is None:
        patch_size = reference_size(bursts) or side
    settings = config.replace(patch_size=min(patch_size, side), search="dense")
    return [(burst, load_burst(burst, settings)[0]) for burst in sample], settings


def estimate_noise_correlation(bursts: list, config: BuildConfig, n_bursts: int = 3,
                               patch_size: int | None = None) -> list[float]:
    """:func:`noise_correlation` from up to ``n_bursts`` of ``bursts`` (spread over them),
    matched by the dense search at ``patch_size`` (by default tune's reference p,
    :func:`reference_size`, so that a build with a fixed p and ``--validation-hole auto``
    gets the hole that tune recommends): for a build with a fixed p whose validation hole is
    auto. Costs the matching of those bursts."""
    loaded, settings = _matched_sample(bursts, config, n_bursts, patch_size)
    return noise_correlation(np.concatenate([
        block_correlations(residual(noisy, burst.center, settings)) for burst, noisy in loaded]))


def estimate_noise(bursts: list, config: BuildConfig, n_bursts: int = 3,
                   patch_size: int | None = None) -> tuple[float, list[float]]:
    """(noise sigma on the 0-255 scale, :func:`noise_correlation`) as tune measures them at
    its reference p (the same bursts and figures as its report): for a build with a fixed p
    whose validation ring is auto. Costs the matching and scoring of those bursts at that p."""
    from .targets import PatchCraft

    loaded, settings = _matched_sample(bursts, config, n_bursts, patch_size)
    s_yr, found = [], []
    for burst, noisy in loaded:
        scores, _, nnf = PatchCraft().score(noisy, burst.center, settings)
        s_yr.append(scores.ravel())
        found.append(block_correlations(residual(noisy, burst.center, settings, nnf)))
    peak = histogram_peak(np.concatenate(s_yr))
    return sigma_from_peak(peak), noise_correlation(np.concatenate(found))


def tune(input_dir, config: BuildConfig, candidates=CANDIDATES, n_bursts: int = 3,
         fit_limit: float = FIT_LIMIT, skip_bad: bool = False, progress=None,
         plan=None) -> TuneReport:
    """Recommend p (and the search and the r_mean window) for a build of ``input_dir``.

    Scores every (offset, tile) pair of up to ``n_bursts`` training bursts, spread over the
    input, at each candidate p that fits the frames (dense search within the build's search
    radius), and applies :func:`pcst_prep.statistics.choose_filter` per candidate.
    ``progress`` wraps the (burst, p) iterations, for instance with tqdm. ``plan``: the
    build's :class:`pcst_prep.plan.BuildPlan`, when it has one (else the input is planned
    here); candidates larger than its smallest frame side are left out.

    Costs about ``n_bursts * len(candidates)`` builds' stage 1 of one burst.
    """
    from .plan import plan_bursts
    from .stages import load_burst
    from .statistics import choose_filter
    from .targets import PatchCraft

    base = config.replace(patch_size=min(candidates), search="dense")
    if plan is None:
        plan = plan_bursts(input_dir, base, skip_bad)
    sample = _sample(plan.bursts, n_bursts)
    largest = reference_size(plan.bursts + plan.validation, candidates)
    sizes = sorted(p for p in candidates if largest is not None and p <= largest)
    if not sizes:
        raise InputError(f"frames are smaller than every candidate patch size {candidates}",
                         input_dir)
    scores = {p: ([], [], []) for p in sizes}
    correlations = []
    jobs = [(b, p) for b in sample for p in sizes]
    for burst, p in interrupt_between(progress(jobs) if progress else jobs):
        noisy = load_burst(burst, base)[0]
        kind, settings = PatchCraft(), base.replace(patch_size=p)
        s_yr, r_mean, nnf = kind.score(noisy, burst.center, settings)
        scores[p][0].append(s_yr.ravel())
        scores[p][1].append(r_mean.ravel())
        radius = settings.search_radius
        scores[p][2].append(np.mean((np.abs(nnf[..., 1]) == radius)
                                    | (np.abs(nnf[..., 2]) == radius)) if radius else 0.0)
        if p == sizes[-1]:
            correlations.append(block_correlations(residual(noisy, burst.center, settings,
                                                            nnf)))
    peaks, shares = {}, {}
    for p, (s_yr, r_mean, _) in scores.items():
        s_yr, r_mean = np.concatenate(s_yr), np.concatenate(r_mean)
        tile_filter = choose_filter(s_yr, r_mean, bins=config.bins, mean_std=config.mean_std)
        peaks[p] = histogram_peak(s_yr)
        shares[p] = float(tile_filter.keeps(s_yr, r_mean).sum() / np.isfinite(s_yr).sum())
    reference = peaks[sizes[-1]]
    if reference >= 0:
        raise InputError("the tile statistics do not look like noise (s_yr is not negative at "
                         f"p {sizes[-1]}): is the input noisy?", input_dir)
    rows = [Candidate(p, peaks[p], shares[p], 1.0 - peaks[p] / reference,
                      float(np.mean(scores[p][2]))) for p in sizes]
    chosen = next(c.patch_size for c in rows if c.noise_fit <= fit_limit)
    at_radius = next(c.at_radius for c in rows if c.patch_size == chosen)
    correlation = noise_correlation(np.concatenate(correlations))
    sigma = sigma_from_peak(reference)
    ring = recommend_ring(sigma, smallest_side(plan.bursts + plan.validation))
    return TuneReport(
        patch_size=chosen, candidates=rows, noise_sigma=sigma,
        noise_correlation=correlation, fit_limit=fit_limit, sampled_bursts=len(sample),
        search="pyramid" if at_radius > 0.05 else "dense",
        mean_std=3.0 if config.noise != "none" else 1.0,
        validation_hole=recommend_hole(correlation, window=ring), validation_patch_size=ring)


def weak_evidence(patch_size: int, fits: dict) -> tuple[int, str] | None:
    """Where the noise fits do not settle p: (the candidate to compare tune's p with, by short
    trial trainings judged by the validation loss: ``pcst-train trial``), and why; None where
    they do. ``fits``: noise fit by candidate p.

    - *default*: no p but the largest came under the limit, so tune's p is only the largest
      candidate's default: compare it with the smallest. With weak noise on fast motion the
      large patches' content error makes s_yr more negative at the reference p, which reads
      as noise fit at every smaller p.
    - *not monotone*: the noise fit does not fall as p grows (some larger p fits more than a
      smaller one), which it would if the s_yr peaks moved with the fit alone: content terms
      as large as the fits' differences move them too (under strong noise, small patches'
      matches follow the noise and miss the content, which offsets their fit): compare tune's
      p with the other end of the candidates.

    On the 28 clip and noise cases of docs/results.md this flags 17, among them the three
    where tune's p was more than 0.3 dB below the best (the second rule was written after
    seeing one of them, bikes sigma 25 k 2); settled by trial, every case comes within
    0.18 dB of the best p.
    """
    sizes = sorted(fits)
    if len(sizes) < 2:
        return None
    if patch_size == sizes[-1]:
        return sizes[0], "default"
    if any(fits[b] > fits[a] for a, b in zip(sizes, sizes[1:])):
        return sizes[-1], "not monotone"
    return None


def weak_evidence_note(patch_size: int, fits: dict) -> str | None:
    """One sentence on :func:`weak_evidence`'s finding, for reports; None where there is none."""
    found = weak_evidence(patch_size, fits)
    if found is None:
        return None
    other, why = found
    reason = (f"no smaller p came under the limit, so p {patch_size} is only the largest "
              f"candidate's default" if why == "default" else
              "the noise fit does not fall as p grows, so content terms move the s_yr peaks "
              "as much as the fit")
    return (f"{reason}: compare with a store at p {other} by short trainings "
            f"(pcst-train trial)")


def settle_commands(store: str, input_dir: str | None, pipeline: str | None,
                    other: int) -> list[str]:
    """The commands that settle :func:`weak_evidence` for ``store`` (built from ``input_dir``
    with p chosen here): a second store at p ``other`` beside it that copies the first's
    held-out tiles, then a trial of the two (its folder beside the store, or in the current
    directory for a store at a URL). A pipeline that is not a shipped preset came from a
    .toml file (or the Python API), which the store does not locate: the command then names
    ``PIPELINE.toml``, for the user to replace."""
    from .config import known_pipelines

    text = str(store).rstrip("/")
    url = zstore.is_url(text)
    if not url and Path(text).name in ("", ".", ".."):
        text = str(Path(text).resolve())
    stem = text.removesuffix(".zarr")
    second = f"{stem}_p{other}.zarr"
    out = f"{zstore.store_name(text)}_trial" if url else f"{stem}_trial"
    q = shlex.quote
    if pipeline and pipeline not in known_pipelines():
        pipeline = "PIPELINE.toml"
    build = (f"pcst-prep build {q(str(input_dir)) if input_dir else 'INPUT_DIR'} {q(second)}"
             + (f" --pipeline {q(pipeline)}" if pipeline else "")
             + f" --patch-size {other} --validation-from {q(text)}")
    return [build, f"pcst-train trial {q(text)} {q(second)} --out {q(out)}"]


# Below this noise sigma (0-255) tune says the frames look nearly clean: the demo's clean
# frames read 1.6, sigma-5 noise reads 5.0 to 5.4 on the project's clips.
WEAK_SIGMA = 2.5


def format_report(report: TuneReport) -> str:
    """The evidence and the recommendation, as text."""
    lines = [f"sampled bursts     {report.sampled_bursts} (training bursts centred on their "
             "middle frame, spread over the input: all of them where there are fewer than "
             "--bursts)",
             f"noise sigma        {report.noise_sigma:.1f} (0-255 scale, from s_yr at the "
             f"largest p)",
             "noise correlation  " + ", ".join(f"lag {lag}: {c:.2f}" for lag, c in
                                               zip(CORRELATION_LAGS, report.noise_correlation))
             + " (of target - input; median over 25 x 25 blocks)",
             "",
             f"{'p':>4} {'peak s_yr':>12} {'kept':>7} {'noise fit':>10} {'at radius':>10}"]
    largest = report.candidates[-1].patch_size
    for c in report.candidates:
        mark = "  <- chosen" if c.patch_size == report.patch_size else ""
        fit = "reference" if c.patch_size == largest else f"{c.noise_fit:.3f}"
        lines.append(f"{c.patch_size:>4} {c.peak_s_yr:>12.4g} {c.kept_share:>7.1%} "
                     f"{fit:>10} {c.at_radius:>10.1%}{mark}")
    why = (f"the smallest p whose noise fit is at most {report.fit_limit:g}"
           if report.patch_size != largest or len(report.candidates) == 1 else
           f"the reference p: no smaller p's noise fit is at most {report.fit_limit:g}")
    lines += ["",
              f"recommended: --patch-size {report.patch_size} ({why}), --search {report.search}"
              + (" (many matches at the search radius: large motion)"
                 if report.search == "pyramid" else "")
              + f", --mean-std {report.mean_std:g}, --validation-hole "
              f"{report.validation_hole} (covers the lags whose noise correlation is at least "
              f"{HOLE_CORRELATION:g}), --validation-patch-size {report.validation_patch_size} "
              f"(the ring of {RING_SIZES[1]} from a noise sigma of {RING_SIGMA:g} on, else "
              f"{RING_SIZES[0]})"]
    if report.noise_sigma < WEAK_SIGMA:
        lines.append(f"note: the noise is weak (sigma ~{report.noise_sigma:.1f} of 255): the "
                     "frames may be nearly clean already (denoising can gain little), or the "
                     "input is not the noisy footage")
    fits = {c.patch_size: c.noise_fit for c in report.candidates}
    note = weak_evidence_note(report.patch_size, fits)
    if note is not None:
        other = weak_evidence(report.patch_size, fits)[0]
        lines.append(f"note: {note}; see docs/results.md. To settle it, build a second store "
                     f"at --patch-size {other} (same input and options, and --validation-from "
                     f"STORE: the held-out tiles are copied, not computed again), then run "
                     f"pcst-train trial STORE STORE_P{other} --out TRIAL (about 13 s a store of 12 "
                     f"training bursts on a 2-core CPU with AMX, 25 to 38 s without).")
    return "\n".join(lines)


def plot_report(report: TuneReport, path) -> Path:
    """PNG: left, noise fit and kept share against p, the limit and the choice marked; right,
    the noise's correlation against the lag, the hole's threshold and the lags the
    recommended hole covers."""
    from .report import pyplot, save_figure

    plt = pyplot()
    sizes = [c.patch_size for c in report.candidates]
    fig, (ax, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=110,
                                    gridspec_kw={"width_ratios": [3, 2]})
    ax.plot(sizes, [c.noise_fit for c in report.candidates], "o-", color="#d62728",
            label="noise fit (share of noise copied)")
    ax.axhline(report.fit_limit, color="#d62728", ls=":", lw=1, label="limit")
    ax.plot(sizes, [c.kept_share for c in report.candidates], "s-", color="#2a7ab9",
            label="share of pairs kept by the filter")
    ax.axvline(report.patch_size, color="black", ls="--", lw=1,
               label=f"chosen p = {report.patch_size}")
    ax.set_xlabel("patch size p")
    ax.set_ylim(min(0, *(c.noise_fit for c in report.candidates)) - 0.05, 1.05)
    ax.set_title(f"pcst-prep tune (noise sigma ~{report.noise_sigma:.1f})")
    ax.legend(fontsize=8)
    lags = CORRELATION_LAGS[:len(report.noise_correlation)]
    right.bar(lags, report.noise_correlation, color="#7f7f7f", label="noise correlation")
    right.axhline(HOLE_CORRELATION, color="#d62728", ls=":", lw=1, label="hole threshold")
    right.axvspan(0.5, (report.validation_hole - 1) / 2 + 0.5, color="#2a7ab9", alpha=0.15,
                  label=f"inside the {report.validation_hole} x {report.validation_hole} hole")
    right.set_xlabel("lag (pixels)")
    right.set_xticks(list(lags))
    right.set_ylim(min(0.0, *report.noise_correlation) - 0.05, 1.0)
    right.set_title("validation hole (--validation-hole)")
    right.legend(fontsize=8)
    return save_figure(fig, path)
