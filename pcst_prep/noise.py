"""Synthetic noise for experiments on clean videos.

A noise model is any object with ``name``, ``params`` (a dict of JSON-able values) and ``__call__(frames, rng) -> noisy`` taking float32 ``[N, H, W, C]`` frames and a
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


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (linear light in [0, 1] -> display values), a linear toe near 0."""
    linear = np.clip(linear, 0.0, None)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`."""
    encoded = np.clip(encoded, 0.0, None)
    return np.where(encoded <= 0.04045, encoded / 12.92,
                    np.power((encoded + 0.055) / 1.055, 2.4)).astype(np.float32)


def _bilinear_demosaic(raw: np.ndarray) -> np.ndarray:
    """[N, H, W] RGGB mosaic -> [N, H, W, 3] by bilinear interpolation (edges reflected)."""
    n, h, w = raw.shape
    masks = np.zeros((3, h, w), np.float32)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    kernels = (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4,
               np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4)
    out = np.empty((n, h, w, 3), np.float32)
    for c in range(3):
        plane = np.pad(raw * masks[c], ((0, 0), (1, 1), (1, 1)), mode="reflect")
        kernel = kernels[1] if c == 1 else kernels[0]
        acc = np.zeros((n, h, w), np.float32)
        for i in range(3):
            for j in range(3):
                if kernel[i, j]:
                    acc += kernel[i, j] * plane[:, i:i + h, j:j + w]
        out[..., c] = acc
    return out


@dataclass(frozen=True)
class CameraPipeline:
    """Noise of a simulated camera: signal-dependent, spatially and cross-channel correlated,
    not Gaussian. A stand-in for real sensor noise.

    The clean frame is taken as sRGB: linearised, turned into camera RGB by the inverse of a
    colour matrix and sampled on an RGGB Bayer mosaic. The raw values get shot and read noise
    (variance ``shot * raw + read**2``), then go through bilinear demosaicing, the colour
    matrix and the sRGB curve. The noise is that pipeline's output with noise minus its output
    without, added to the clean frame, so the clean frame stays the exact ground truth.
    Single-channel frames skip the mosaic and the colour matrix.

    Examples
    --------
    >>> noise = CameraPipeline(shot=0.006, read=0.006)
    >>> clean = np.full((1, 64, 64, 3), 0.5, np.float32)
    >>> noisy = noise(clean, np.random.default_rng(0))
    >>> bool(0.02 < (noisy - clean).std() < 0.2), noisy.dtype.name
    (True, 'float32')
    """

    shot: float = 0.006
    read: float = 0.006
    saturation: float = 0.6
    name: str = "camera"

    def __post_init__(self):
        if self.shot < 0 or self.read < 0:
            raise InputError(f"shot and read must be >= 0, got {self.shot}, {self.read}")
        if not 0 <= self.saturation <= 1:
            raise InputError(f"saturation must be in [0, 1], got {self.saturation}")

    @property
    def params(self) -> dict:
        return {"shot": float(self.shot), "read": float(self.read),
                "saturation": float(self.saturation)}

    @property
    def colour_matrix(self) -> np.ndarray:
        """Camera RGB -> linear sRGB: identity plus ``saturation`` times a typical sensor's
        cross-talk correction (rows sum to 1)."""
        cross = np.array([[0.8, -0.6, -0.2], [-0.3, 0.6, -0.3], [0.0, -0.6, 0.6]], np.float32)
        return np.eye(3, dtype=np.float32) + np.float32(self.saturation) * cross

    def _render(self, raw: np.ndarray) -> np.ndarray:
        if raw.ndim == 4:  # single channel: no mosaic
            return srgb_encode(raw)
        return srgb_encode(_bilinear_demosaic(raw) @ self.colour_matrix.T)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        frames = np.asarray(frames, np.float32)
        linear = srgb_decode(frames)
        if frames.shape[-1] == 3:
            camera = np.clip(linear @ np.linalg.inv(self.colour_matrix).T, 0.0, None)
            raw = np.empty(frames.shape[:3], np.float32)
            raw[:, 0::2, 0::2] = camera[:, 0::2, 0::2, 0]
            raw[:, 0::2, 1::2] = camera[:, 0::2, 1::2, 1]
            raw[:, 1::2, 0::2] = camera[:, 1::2, 0::2, 1]
            raw[:, 1::2, 1::2] = camera[:, 1::2, 1::2, 2]
        elif frames.shape[-1] == 1:
            raw = linear
        else:
            raise InputError(f"the camera noise model needs 1 or 3 channels, got "
                             f"{frames.shape[-1]}")
        std = np.sqrt(self.shot * raw + self.read ** 2).astype(np.float32)
        noisy_raw = raw + std * rng.standard_normal(raw.shape, dtype=np.float32)
        return (frames + self._render(noisy_raw) - self._render(raw)).astype(np.float32)


BUILTIN_MODELS = {"correlated-gaussian": CorrelatedGaussian, "camera": CameraPipeline}


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


def frame_rng(seed: int, source: int, frame: int) -> np.random.Generator:
    """Generator for one frame's noise: a frame has one noise, whichever bursts use it and in
    whatever order they are processed (as a camera's footage does)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 3, source, frame]))


def add_frame_noise(model: NoiseModel, frames: np.ndarray, seed: int, source: int,
                    frame_indices) -> np.ndarray:
    """``frames`` [M, H, W, C] of sequence ``source`` (at ``frame_indices``) with the model's
    noise, each frame's drawn from :func:`frame_rng`."""
    return np.stack([model(frames[i:i + 1], frame_rng(seed, source, int(f)))[0]
                     for i, f in enumerate(frame_indices)]).astype(np.float32, copy=False)
