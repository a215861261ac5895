"""Planning a build: the sequences of an input directory, their checks, and their bursts.

Every input is checked here, before a store is created or a task runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .bursts import Burst, Sequence, SequenceInfo, cut_bursts, find_sequences, probe_sequence
from .config import BuildConfig
from .errors import InputError
from .statistics import tile_origins


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """What a build will do: its bursts, the sequences they come from, and what was skipped.

    ``sources`` holds, per usable sequence, ``path`` (relative to the input directory),
    ``n_frames``, ``height``, ``width`` and ``channels``; ``skipped`` holds one
    "path: problem" line per sequence left out by ``skip_bad``.
    """

    bursts: list[Burst]
    sources: list[dict]
    channels: int
    skipped: list[str]
    validation: list[Burst] = dataclasses.field(default_factory=list)


def plan_bursts(input_dir, config: BuildConfig, skip_bad: bool = False) -> BuildPlan:
    """Sequences, their sizes and the bursts of a build; checks every input before any work."""
    input_dir = Path(input_dir)
    bursts, sources, skipped, channels = [], [], [], None
    for sequence in find_sequences(input_dir):
        try:
            info = probe_sequence(sequence)
            _check_sequence(sequence, info, config, channels)
        except InputError as exc:
            if not skip_bad:
                raise
            skipped.append(str(exc))
            continue
        channels = info.channels
        source = len(sources)
        sources.append({
            "path": str(sequence.path.relative_to(input_dir)) if sequence.path != input_dir
            else ".",
            "n_frames": info.n_frames, "height": info.height, "width": info.width,
            "channels": info.channels,
        })
        for burst in cut_bursts(info.n_frames, config.burst_length, config.frame_step,
                                config.burst_stride, config.replicate):
            bursts.append(dataclasses.replace(burst, index=len(bursts), sequence=sequence,
                                              source=source, height=info.height,
                                              width=info.width))
    if not bursts:
        raise InputError("no usable sequence" + (f" ({len(skipped)} skipped)" if skipped else ""),
                         input_dir)
    training, validation = split_holdout(bursts, len(sources), config.holdout, input_dir)
    return BuildPlan(training, sources, channels, skipped, validation)


def split_holdout(bursts: list[Burst], n_sources: int, share: float, input_dir=None):
    """(training, validation) bursts: a share of the input held out, never trained on.

    With several sequences, the last ``round(share * n)`` (at least 1, at most n - 1) are held
    out whole. With one, its last ``round(share * B)`` bursts (at least 1) are, and training
    bursts that share a frame with them are dropped, so that no held-out frame is ever seen
    in training. Training bursts are numbered 0..B-1 (their rows in the store), held-out ones
    B.. (their noise seeds differ from every training burst's).
    """
    if share <= 0:
        return bursts, []
    if n_sources > 1:
        n_held = min(max(1, round(share * n_sources)), n_sources - 1)
        held = [b for b in bursts if b.source >= n_sources - n_held]
        training = [b for b in bursts if b.source < n_sources - n_held]
    else:
        n_held = max(1, round(share * len(bursts)))
        held = bursts[-n_held:]
        seen = {i for b in held for i in b.frame_indices}
        training = [b for b in bursts[:-n_held] if not seen.intersection(b.frame_indices)]
    if not training:
        raise InputError(f"too few bursts ({len(bursts)}) to hold out {share:g} of them for "
                         "validation without sharing frames; use --holdout 0 or more input",
                         input_dir)
    training = [dataclasses.replace(b, index=i) for i, b in enumerate(training)]
    held = [dataclasses.replace(b, index=len(training) + i) for i, b in enumerate(held)]
    return training, held


def _check_sequence(sequence: Sequence, info: SequenceInfo, config: BuildConfig, channels):
    min_side = max(config.patch_size, config.tile_size,
                   config.validation_patch_size if config.holdout else 0)
    if info.n_frames < config.burst_span:
        raise InputError(
            f"has {info.n_frames} frames, fewer than one burst needs ({config.burst_span}: "
            f"burst_length {config.burst_length}, frame_step {config.frame_step})", sequence.path)
    if min(info.height, info.width) < min_side:
        raise InputError(
            f"frames are {info.height}x{info.width}, smaller than the patch or tile "
            f"({min_side}x{min_side})", sequence.path)
    if channels is not None and info.channels != channels:
        raise InputError(f"has {info.channels} channel(s) but earlier sequences have {channels}",
                         sequence.path)


def input_fingerprints(input_dir, bursts: list[Burst]) -> dict[str, str]:
    """A content hash of every file the bursts read, by path relative to ``input_dir``.

    The whole file is hashed (BLAKE2b, 128 bits): reading it costs far less than matching
    it, and unlike sizes, modification times or sampled blocks it notices any changed pixel,
    and it survives copying the input elsewhere (a resumed build on a cluster)."""
    import hashlib

    input_dir = Path(input_dir)
    files = sorted({f for b in bursts for f in b.sequence.files(b.frame_indices)})
    fingerprints = {}
    for path in files:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        fingerprints[str(path.relative_to(input_dir))] = digest.hexdigest()
    return fingerprints


def tile_grid(burst: Burst, config: BuildConfig) -> tuple[int, int]:
    """Tiles per column and per row of a burst's frame."""
    return (len(tile_origins(burst.height, config.tile_size, config.tile_stride)),
            len(tile_origins(burst.width, config.tile_size, config.tile_stride)))
