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
    return BuildPlan(bursts, sources, channels, skipped)


def _check_sequence(sequence: Sequence, info: SequenceInfo, config: BuildConfig, channels):
    min_side = max(config.patch_size, config.tile_size)
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


def tile_grid(burst: Burst, config: BuildConfig) -> tuple[int, int]:
    """Tiles per column and per row of a burst's frame."""
    return (len(tile_origins(burst.height, config.tile_size, config.tile_stride)),
            len(tile_origins(burst.width, config.tile_size, config.tile_stride)))
