"""pcst_prep: build patch-craft training sets from noisy bursts.

The flow is files -> bursts -> nnf -> targets -> tile statistics -> store. Every arrow is a
function with arrays in and arrays out; only :mod:`pcst_prep.bursts` and the store touch disk.
This package never imports torch.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pcst")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

from .errors import InputError
from .bursts import Sequence, find_sequences, read_sequence, cut_bursts
from .matching import match_patches
from .targets import craft_target, craft_targets
from .statistics import tile_stats, choose_s_min, mean_window
from .noise import CorrelatedGaussian, get_noise_model

__all__ = [
    "__version__",
    "InputError",
    "Sequence",
    "find_sequences",
    "read_sequence",
    "cut_bursts",
    "match_patches",
    "craft_target",
    "craft_targets",
    "tile_stats",
    "choose_s_min",
    "mean_window",
    "CorrelatedGaussian",
    "get_noise_model",
]
