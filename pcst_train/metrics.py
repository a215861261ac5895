"""PSNR and SSIM per image, computed by scikit-image with an explicit data range (never
guessed from the dtype).

SSIM uses the settings of Wang et al. (2004): an 11x11 Gaussian window of sigma 1.5, K1 0.01,
K2 0.03, population (not sample) covariances, the valid region only, averaged over channels.
scikit-image rather than torchmetrics: torchmetrics' SSIM differs from that reference in the
fourth decimal, and these figures are compared with published ones.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _images(estimate: torch.Tensor, reference: torch.Tensor):
    """float64 NumPy [N, C, H, W] pairs from [N, C, H, W] or [C, H, W] tensors."""
    if estimate.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(estimate.shape)} vs {tuple(reference.shape)}")
    if estimate.dim() == 3:
        estimate, reference = estimate[None], reference[None]
    as_array = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
    return as_array(estimate), as_array(reference)


def psnr(estimate: torch.Tensor, reference: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR in dB per image of [N, C, H, W] (or one [C, H, W]) tensors: float64 [N].

    Examples
    --------
    >>> a = torch.zeros(1, 1, 4, 4); b = torch.full((1, 1, 4, 4), 0.1)
    >>> round(float(psnr(a, b, data_range=1.0)), 6)
    20.0
    """
    x, y = _images(estimate, reference)
    with np.errstate(divide="ignore"):  # identical images: inf dB, as the formula says
        values = [peak_signal_noise_ratio(b, a, data_range=data_range) for a, b in zip(x, y)]
    return torch.tensor(values, dtype=torch.float64)


def ssim(estimate: torch.Tensor, reference: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM per image of [N, C, H, W] (or one [C, H, W]) tensors: float64 [N].
    Images must be at least 11 pixels on each side (the window)."""
    x, y = _images(estimate, reference)
    values = [structural_similarity(b, a, data_range=data_range, channel_axis=0,
                                    gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False) for a, b in zip(x, y)]
    return torch.tensor(values, dtype=torch.float64)
