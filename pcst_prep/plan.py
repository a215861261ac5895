"""Planning a build: the sequences of an input directory, their checks, and their bursts.

Every input is checked here, before a store is created or a task runs: sizes and channels
from the headers, and (``verify=True``, what a build does) every frame a burst uses decoded
once and fingerprinted, so that a truncated or NaN frame is named before anything is written.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from .bursts import (Burst, Sequence, SequenceInfo, cut_bursts, decode_check, find_sequences,
                     probe_sequence)
from .config import RING_SIZES, BuildConfig
from .errors import InputError
from .statistics import tile_origins


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """What a build will do: its bursts, the sequences they come from, and what was skipped.

    ``sources`` holds, per usable sequence, ``path`` (relative to the input directory),
    ``n_frames``, ``height``, ``width`` and ``channels``; ``skipped`` holds one
    "path: problem" line per sequence left out by ``skip_bad``; ``inputs`` (verified plans
    only) a content hash of every file the bursts read, by path relative to the input
    directory.
    """

    bursts: list[Burst]
    sources: list[dict]
    channels: int
    skipped: list[str]
    validation: list[Burst] = dataclasses.field(default_factory=list)
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)


def plan_bursts(input_dir, config: BuildConfig, skip_bad: bool = False, verify: bool = False,
                progress: bool = False) -> BuildPlan:
    """Sequences, their sizes and the bursts of a build; checks every input before any work.

    ``verify``: also decode every frame that a burst uses, once, and fingerprint its file
    (what a build does before it creates its store; ``progress`` reports that pass). A
    sequence that fails is an error, or with ``skip_bad`` skipped with the reason.
    """
    input_dir = Path(input_dir)
    bursts, sources, skipped, channels, inputs = [], [], [], None, {}
    sequences = find_sequences(input_dir)
    bar = _VerifyProgress(sequences, config, enabled=verify and progress)
    for sequence in sequences:
        try:
            info = probe_sequence(sequence)
            _check_sequence(sequence, info, config, channels)
            cut = cut_bursts(info.n_frames, config.burst_length, config.frame_step,
                             config.burst_stride, config.replicate)
            if verify:
                used = sorted({i for b in cut for i in b.frame_indices})
                inputs.update(_verify_sequence(input_dir, sequence, used, bar))
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
        for burst in cut:
            bursts.append(dataclasses.replace(burst, index=len(bursts), sequence=sequence,
                                              source=source, height=info.height,
                                              width=info.width))
    if not bursts:
        raise InputError("no usable sequence" + (f" ({len(skipped)} skipped)" if skipped else ""),
                         input_dir)
    bar.close()
    training, validation = split_holdout(bursts, len(sources), config.holdout, input_dir)
    if verify:  # the files of the bursts kept (the hold-out may drop a few training bursts)
        read = {str(f.relative_to(input_dir)) for b in training + validation
                for f in b.sequence.files(b.frame_indices)}
        inputs = {name: digest for name, digest in sorted(inputs.items()) if name in read}
    return BuildPlan(training, sources, channels, skipped, validation, inputs)


def split_holdout(bursts: list[Burst], n_sources: int, share: float, input_dir=None):
    """(training, validation) bursts: a share of the input held out, never trained on.

    With several sequences, the last ``round(share * n)`` (at least 1, at most n - 1) are held
    out whole. With one, its last ``round(share * B)`` bursts (at least 1) are, and training
    bursts that share a frame with them are dropped, so that no held-out frame is ever seen
    in training. Training bursts are numbered 0..B-1 (their rows in the store), held-out ones
    B.. (after the training bursts in the store's tables).
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
    patch_size = config.patch_size
    if patch_size == "auto":  # tune chooses among candidates that fit every sequence
        from .tune import CANDIDATES

        patch_size = min(CANDIDATES)
    window = config.validation_patch_size
    if window == "auto":  # the smaller ring, the larger only where the frames hold it
        window = RING_SIZES[0]
    min_side = max(patch_size, config.tile_size, window if config.holdout else 0)
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


def _verify_sequence(input_dir: Path, sequence: Sequence, used: list[int], bar) -> dict:
    """Decode the frames ``used`` of a sequence (raising InputError naming a bad file) and
    fingerprint the files that hold them.

    A fingerprint is a hash of the whole file (BLAKE2b, 128 bits) of the bytes that are also
    decoded: reading a file costs far less than matching it, and unlike sizes, modification
    times or sampled blocks the hash notices any changed pixel, and it survives copying the
    input elsewhere (a resumed build on a cluster)."""
    import hashlib

    fingerprints = {}
    for path, data in decode_check(sequence, used):
        bar.update(path)
        digest = hashlib.blake2b(data, digest_size=16) if data is not None else _hash_file(path)
        fingerprints[str(path.relative_to(input_dir))] = digest.hexdigest()
    return fingerprints


def _hash_file(path: Path):
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


class _VerifyProgress:
    """Progress of the decoding pass, in files (a video is one)."""

    def __init__(self, sequences, config: BuildConfig, enabled: bool):
        self.bar = None
        if enabled:
            from .progress import Progress

            total = sum(len(s.frames) or 1 for s in sequences)
            self.bar = Progress(total, "0/3 check inputs (decode every frame)", "file")
            self.start, self.files = time.perf_counter(), 0

    def update(self, path):
        if self.bar is not None:
            self.bar.update()
            self.files += 1

    def close(self):
        if self.bar is not None:
            self.bar.close()
            if not sys.stderr.isatty():
                print(f"0/3 check inputs: {self.files} files decoded in "
                      f"{time.perf_counter() - self.start:.1f} s", file=sys.stderr)


def tile_grid(burst: Burst, config: BuildConfig) -> tuple[int, int]:
    """Tiles per column and per row of a burst's frame."""
    return (len(tile_origins(burst.height, config.tile_size, config.tile_stride)),
            len(tile_origins(burst.width, config.tile_size, config.tile_stride)))
