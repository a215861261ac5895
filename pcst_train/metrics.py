"""PSNR and SSIM with an explicit data range (no guessing from the dtype)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def psnr(estimate: torch.Tensor, reference: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR in dB per image of [N, C, H, W] (or one [C, H, W]) tensors.

    Examples
    --------
    >>> a = torch.zeros(1, 1, 4, 4); b = torch.full((1, 1, 4, 4), 0.1)
    >>> round(float(psnr(a, b, data_range=1.0)), 6)
    20.0
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(estimate.shape)} vs {tuple(reference.shape)}")
    if estimate.dim() == 3:
        estimate, reference = estimate[None], reference[None]
    mse = ((estimate.double() - reference.double()) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(estimate: torch.Tensor, reference: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01,
    K2 0.03, valid region only, averaged over channels) of [N, C, H, W] tensors."""
    if estimate.dim() == 3:
        estimate, reference = estimate[None], reference[None]
    x, y = estimate.double(), reference.double()
    channels = x.shape[1]
    g = _gaussian_window()
    window = (g[:, None] * g[None, :]).expand(channels, 1, 11, 11).contiguous()

    def blur(t):
        return F.conv2d(t, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return ssim_map.mean(dim=(1, 2, 3))
