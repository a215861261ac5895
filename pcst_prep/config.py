"""Every parameter of a dataset build, in one checked place.

Pipeline presets in ``pipelines/*.toml`` are data: a preset fills a :class:`BuildConfig`, and
command-line options override single fields. The resolved configuration is stored with the
data, and a resumed build must resolve to the same one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .targets import TARGET_KINDS, target_kind

SEARCH_KINDS = ("dense", "grid", "pyramid")
PIPELINE_DIR = Path(__file__).resolve().parent.parent / "pipelines"


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of ``pcst-prep build``.

    Attributes
    ----------
    burst_length : int
        M, frames per burst (odd).
    frame_step : int
        Take every ``frame_step``-th frame of a sequence.
    burst_stride : int or None
        Frames between the starts of consecutive bursts; None: one burst's span.
    replicate : bool
        Every frame of a burst serves once as the centre.
    patch_size : int
        p, the side of the matched patches (15 to 45 in the paper; larger for stronger noise).
    search_radius : int
        R, the half-width of the dense search window.
    search : str
        "dense" (every displacement within R), "grid" (plus the reference's real-noise grid:
        step ``grid_step`` within ``large_radius``) or "pyramid" (plus a coarse-to-fine
        search up to ``large_radius``); see :func:`pcst_prep.matching.search_patches`.
    large_radius, grid_step : int
        The large window of "grid" and "pyramid", and the grid's step.
    tile_size, tile_stride : int
        Training tiles and the step between them.
    targets_per_tile : int
        K, the most targets (offsets) kept per tile. Training draws one of them at random each
        time it sees the tile. 4 gives 4 independent noise draws of the target at 5x the input
        tile's storage; a larger K adds variety at linear storage cost.
    mean_std : float
        Width of the r_mean window in standard deviations (3 for synthetic noise, 1 for real).
    bins : int
        Histogram bins for choosing s_min.
    noise : str
        "none", a built-in noise model or "module:factory" (see :mod:`pcst_prep.noise`).
    noise_params : dict
        Keyword arguments of the noise model.
    seed : int
        Seeds the noise and the choice of targets, per burst.
    keep_nnf : bool
        Keep each burst's nnf in the finished store.
    filter : bool
        Apply the tile filter (s_yr > s_min and the r_mean window). False keeps every scored
        pair: the paper's no-filter ablation.
    targets : str
        "patch-craft" (the method) or "neighbour": the raw next frame of the burst as the
        target, no matching (a naive Noise2Noise ablation; only sound without motion).
    """

    burst_length: int = 7
    frame_step: int = 1
    burst_stride: int | None = None
    replicate: bool = False
    patch_size: int = 43
    search_radius: int = 37
    search: str = "dense"
    large_radius: int = 500
    grid_step: int = 3
    tile_size: int = 50
    tile_stride: int = 30
    targets_per_tile: int = 4
    mean_std: float = 3.0
    bins: int = 50001
    noise: str = "none"
    noise_params: dict = field(default_factory=dict)
    seed: int = 0
    keep_nnf: bool = False
    filter: bool = True
    targets: str = "patch-craft"
    pipeline: str = "custom"

    def __post_init__(self):
        def check(condition, message):
            if not condition:
                raise InputError(message)

        check(self.burst_length >= 3 and self.burst_length % 2 == 1,
              f"burst_length must be an odd number >= 3, got {self.burst_length}")
        check(self.frame_step >= 1, f"frame_step must be >= 1, got {self.frame_step}")
        check(self.burst_stride is None or self.burst_stride >= 1,
              f"burst_stride must be >= 1, got {self.burst_stride}")
        check(1 <= self.patch_size <= 255, f"patch_size must be in [1, 255], got {self.patch_size}")
        check(0 <= self.search_radius <= 1000,
              f"search_radius must be in [0, 1000], got {self.search_radius}")
        check(self.search in SEARCH_KINDS,
              f"search must be one of {', '.join(SEARCH_KINDS)}, got {self.search!r}")
        check(0 <= self.large_radius <= 1000,
              f"large_radius must be in [0, 1000], got {self.large_radius}")
        check(self.grid_step >= 1, f"grid_step must be >= 1, got {self.grid_step}")
        check(self.tile_size >= 2, f"tile_size must be >= 2, got {self.tile_size}")
        check(self.tile_stride >= 1, f"tile_stride must be >= 1, got {self.tile_stride}")
        check(self.targets_per_tile >= 1,
              f"targets_per_tile must be >= 1, got {self.targets_per_tile}")
        check(self.mean_std > 0, f"mean_std must be > 0, got {self.mean_std}")
        check(self.bins >= 3, f"bins must be >= 3, got {self.bins}")
        check(self.targets in TARGET_KINDS,
              f"targets must be one of {', '.join(TARGET_KINDS)}, got {self.targets!r}")

    @property
    def n_offsets(self) -> int:
        """Targets scored per tile: every offset of the patch grid, or the one neighbour."""
        return len(target_kind(self.targets).offsets(self))

    @property
    def burst_span(self) -> int:
        return (self.burst_length - 1) * self.frame_step + 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "BuildConfig":
        return cls(**values)

    def build_defining(self) -> dict:
        """The parameters that determine the store's contents (a resume must match them)."""
        values = self.to_dict()
        values.pop("pipeline")
        values.pop("keep_nnf")
        return values

    def replace(self, **changes) -> "BuildConfig":
        return dataclasses.replace(self, **changes)


def pipeline_path(name: str) -> Path:
    """The preset file for ``name``: a path to a .toml file, or a name in ``pipelines/``."""
    candidate = Path(name)
    if candidate.suffix == ".toml":
        if not candidate.is_file():
            raise InputError("no such pipeline file", candidate)
        return candidate
    path = PIPELINE_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PIPELINE_DIR.glob("*.toml")))
        raise InputError(f"unknown pipeline {name!r} (known: {known})")
    return path


def load_pipeline(name: str, **overrides) -> BuildConfig:
    """A :class:`BuildConfig` from a pipeline preset, with ``overrides`` (None means unset).

    Examples
    --------
    >>> config = load_pipeline("paper-synthetic", patch_size=31)
    >>> config.patch_size, config.search_radius, config.noise_params["sigma"]
    (31, 37, 20.0)
    """
    path = pipeline_path(name)
    try:
        preset = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"bad pipeline file ({exc})", path) from None
    preset.pop("version", None)
    preset.pop("description", None)
    preset["pipeline"] = preset.pop("name", path.stem)
    fields = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = set(preset) - fields
    if unknown:
        raise InputError(f"unknown parameters {sorted(unknown)}", path)
    preset.update({k: v for k, v in overrides.items() if v is not None})
    return BuildConfig(**preset)
