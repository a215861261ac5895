"""pcst_prep: build patch-craft training sets from noisy bursts.

The flow is files -> bursts -> nnf -> targets -> tile statistics -> store. Every arrow is a
function with arrays in and arrays out; input is read by :mod:`pcst_prep.bursts` (and hashed
by :mod:`pcst_prep.plan`), the store is written by :mod:`pcst_prep.store`, presets are read by
:mod:`pcst_prep.config`, and reports (text, PNG) come from :mod:`pcst_prep.report` and
:mod:`pcst_prep.tune`. This package never imports torch.

Names are imported lazily, so that ``import pcst_prep.bursts`` (which pcst_train uses to read
images) does not pull in Numba.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pcst")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "InputError": "errors",
    "Sequence": "bursts", "find_sequences": "bursts", "read_sequence": "bursts",
    "cut_bursts": "bursts",
    "match_patches": "matching",
    "craft_target": "targets", "craft_targets": "targets",
    "tile_stats": "statistics", "choose_s_min": "statistics", "mean_window": "statistics",
    "CorrelatedGaussian": "noise", "get_noise_model": "noise",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
