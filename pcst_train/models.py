"""Bias-free denoisers (Mohan et al., ICLR 2020), with the reference implementation's
parameter names so that its checkpoints load unchanged.

Bias-free networks have no additive constants anywhere (no conv biases, batch norm without
mean subtraction or shift), which makes them scale-equivariant and lets a network trained for
one range of noise levels generalise to others: the starting point the method adapts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BFDnCNN(nn.Module):
    """Bias-free DnCNN: residual, ``layers`` 3x3 convolutions of ``kernels`` channels.

    Every hidden layer is followed by bias-free batch norm: divide by the standard deviation
    of each channel (over the batch in training, the running estimate in evaluation), multiply
    by a learnt gamma; no mean subtraction, no shift.

    Parameters match the reference: ``conv_layers.N.weight``, ``running_sd.N``, ``gammas.N``.
    """

    def __init__(self, channels: int = 3, layers: int = 20, kernels: int = 64):
        super().__init__()
        self.channels, self.layers, self.kernels = channels, layers, kernels
        self.conv_layers = nn.ModuleList(
            [nn.Conv2d(channels, kernels, 3, padding=1, bias=False)]
            + [nn.Conv2d(kernels, kernels, 3, padding=1, bias=False) for _ in range(layers - 2)]
            + [nn.Conv2d(kernels, channels, 3, padding=1, bias=False)])
        self.running_sd = nn.ParameterList(
            [nn.Parameter(torch.ones(1, kernels, 1, 1), requires_grad=False)
             for _ in range(layers - 2)])
        self.gammas = nn.ParameterList(
            [nn.Parameter((torch.randn(1, kernels, 1, 1) * (2.0 / 9.0 / 64.0)).clamp_(-0.025, 0.025))
             for _ in range(layers - 2)])

    def config(self) -> dict:
        return {"channels": self.channels, "layers": self.layers, "kernels": self.kernels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv_layers[0](x))
        for conv, running_sd, gamma in zip(self.conv_layers[1:-1], self.running_sd, self.gammas):
            out = conv(out)
            if self.training:
                sd = torch.sqrt(out.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
                with torch.no_grad():
                    running_sd.mul_(0.9).add_(0.1 * sd)
            else:
                sd = running_sd
            out = F.relu(out / sd * gamma)
        return x - self.conv_layers[-1](out)


class BFUNet(nn.Module):
    """Bias-free UNet of Mohan et al. (2019): one down/up level, dilated middle, no residual.

    Parameters match the reference: ``conv1`` .. ``conv9``. Odd sizes are zero-padded to even
    and cropped back.
    """

    def __init__(self, channels: int = 3):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2, bias=False)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.conv5 = nn.Conv2d(64, 64, 3, dilation=2, padding=2, bias=False)
        self.conv6 = nn.Conv2d(64, 64, 3, dilation=4, padding=4, bias=False)
        self.conv7 = nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1, bias=False)
        self.conv8 = nn.Conv2d(96, 32, 3, padding=1, bias=False)
        self.conv9 = nn.Conv2d(32, channels, 5, padding=2, bias=False)

    def config(self) -> dict:
        return {"channels": self.channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, width % 2, 0, height % 2))
        saved = F.relu(self.conv2(F.relu(self.conv1(x))))
        out = F.relu(self.conv3(saved))
        for conv in (self.conv4, self.conv5, self.conv6, self.conv7):
            out = F.relu(conv(out))
        out = F.relu(self.conv8(torch.cat([out, saved], dim=1)))
        return self.conv9(out)[..., :height, :width]


MODELS = {"dncnn": BFDnCNN, "unet": BFUNet}


def as_grayscale(model: nn.Module) -> nn.Module:
    """A 1-channel copy of an RGB model that computes exactly what the RGB model does on the
    grey frame repeated in R, G and B, its three outputs averaged: the first convolution's
    weights summed over its input channels, the last one's averaged over its outputs (the
    DnCNN's residual input is grey in every channel, so it averages to itself). How a network
    pre-trained on colour starts on grayscale footage (microscopy, most scientific cameras).
    """
    if model.channels != 3:
        raise ValueError(f"as_grayscale takes a 3-channel model, got {model.channels}")
    grey = build_model(model_name(model), **{**model.config(), "channels": 1})
    state = model.state_dict()
    first, last = (("conv1.weight", "conv9.weight") if isinstance(model, BFUNet) else
                   ("conv_layers.0.weight", f"conv_layers.{model.layers - 1}.weight"))
    state[first] = state[first].sum(dim=1, keepdim=True)
    state[last] = state[last].mean(dim=0, keepdim=True)
    grey.load_state_dict(state)
    return grey.to(next(model.parameters()).device).train(model.training)


def fit_channels(model: nn.Module, channels: int) -> nn.Module | None:
    """``model`` for images of ``channels`` channels: itself, its grayscale copy (an RGB model
    on grayscale images, :func:`as_grayscale`), or None where it cannot serve them."""
    if model.channels == channels:
        return model
    if model.channels == 3 and channels == 1:
        return as_grayscale(model)
    return None


def model_name(model: nn.Module) -> str:
    """The registry name of a model instance."""
    return next(name for name, cls in MODELS.items() if isinstance(model, cls))


def build_model(name: str, **kwargs) -> nn.Module:
    """A model by name ("dncnn" or "unet") and constructor arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name](**kwargs)
