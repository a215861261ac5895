"""Synthetic noise for experiments on clean videos.

A noise model is any object with ``name``, ``params`` (a dict of JSON-able values recorded in
the store) and ``__call__(frames, rng) -> noisy`` taking float32 ``[N, H, W, C]`` frames and a
``numpy.random.Generator``. The builder seeds the generator per burst, so results do not depend
on scheduling.

Plugging in another model: pass ``"package.module:factory"`` as the noise name (on the command
line ``--noise package.module:factory``); :func:`get_noise_model` imports it and calls
``factory(**params)``. Any importable module works, for instance one next to your data.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import InputError


class NoiseModel(Protocol):
    name: str

    @property
    def params(self) -> dict: ...

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class CorrelatedGaussian:
    """The paper's spatially correlated Gaussian noise.

    I.i.d. Gaussian noise of standard deviation ``sigma / 255`` per pixel and channel, convolved
    ('valid') with a k x k box whose weights are 1/k, so the per-pixel standard deviation stays
    sigma / 255 while neighbours within k pixels are correlated. k = 1 is i.i.d. noise.
    Frames and channels get independent noise.

    Examples
    --------
    >>> noise = CorrelatedGaussian(sigma=20, kernel_size=3)
    >>> clean = np.zeros((1, 200, 200, 3), np.float32)
    >>> noisy = noise(clean, np.random.default_rng(0))
    >>> round(float(noisy.std() * 255))
    20
    """

    sigma: float = 20.0
    kernel_size: int = 3
    name: str = "correlated-gaussian"

    def __post_init__(self):
        if self.sigma < 0:
            raise InputError(f"sigma must be >= 0, got {self.sigma}")
        if self.kernel_size < 1:
            raise InputError(f"kernel_size must be >= 1, got {self.kernel_size}")

    @property
    def params(self) -> dict:
        return {"sigma": float(self.sigma), "kernel_size": int(self.kernel_size)}

    def sample(self, shape, rng: np.random.Generator) -> np.ndarray:
        """Noise alone, float32 of ``shape`` = [N, H, W, C]."""
        n, h, w, c = shape
        k = self.kernel_size
        white = rng.standard_normal((n, h + k - 1, w + k - 1, c), dtype=np.float32)
        white *= np.float32(self.sigma / 255.0)
        noise = np.zeros(shape, dtype=np.float32)
        for i in range(k):
            for j in range(k):
                noise += white[:, i:i + h, j:j + w]
        return noise / np.float32(k)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (frames + self.sample(frames.shape, rng)).astype(np.float32)


BUILTIN_MODELS = {"correlated-gaussian": CorrelatedGaussian}


def get_noise_model(name: str | None, **params) -> NoiseModel | None:
    """A noise model by name: ``None``/``"none"``, a built-in, or ``"module:factory"``.

    Raises
    ------
    InputError
        For an unknown name, a factory that cannot be imported, or bad parameters.
    """
    if name in (None, "", "none"):
        return None
    if name in BUILTIN_MODELS:
        factory = BUILTIN_MODELS[name]
    elif ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"cannot load noise model {name!r}: {exc}") from None
    else:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise InputError(f"unknown noise model {name!r} (built-in: {known}; or module:factory)")
    try:
        return factory(**params)
    except TypeError as exc:
        raise InputError(f"bad parameters for noise model {name!r}: {exc}") from None


def burst_rng(seed: int, burst_index: int) -> np.random.Generator:
    """Generator for one burst's noise, independent of the order in which bursts are processed."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0, burst_index]))
