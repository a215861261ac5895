"""Every parameter of a dataset build, in one checked place.

Pipeline presets are data (``pcst_prep/presets/*.toml``, shipped with the package and linked
from ``pipelines/``): a preset fills a :class:`BuildConfig`, and command-line options override
single fields. The resolved configuration is stored with the data, and a resumed build must
resolve to the same one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .clitools import param
from .errors import InputError
from .noise import get_noise_model
from .targets import TARGET_KINDS, target_kind

SEARCH_KINDS = ("dense", "grid", "pyramid")
TRAINING_TARGETS = tuple(k for k in TARGET_KINDS if k != "ring")
VALIDATION_TARGETS = ("patch-craft", "guided", "ring")
RING_SIZES = (15, 25)  # --validation-patch-size auto: weak to medium noise, strong noise
PRESETS = resources.files("pcst_prep") / "presets"


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of ``pcst-prep build``, each declared once with its default and help text.

    ``pcst-prep build`` generates one option per field from these declarations (``--help``
    lists them); a preset fills the fields it names; :meth:`__post_init__` checks ranges.
    """

    burst_length: int = param(7, help="Frames per burst, M (odd).")
    frame_step: int = param(1, help="Use every N-th frame (against temporally correlated "
                            "noise).")
    burst_stride: int | None = param(None, help="Frames between burst starts [one burst span].")
    replicate: bool = param(False, help="Every frame of a burst serves once as the center.")
    patch_size: int | str = param(43, help="p, side of the matched patches (15 to 45 in the "
                                  "paper; larger for stronger noise), or auto: chosen from "
                                  "the noisy input by pcst-prep tune.")
    search_radius: int = param(37, help="R, half-width of the dense search window.")
    search: str = param("dense", choices=SEARCH_KINDS,
                        help="Candidates: dense (within the search radius), grid (plus the "
                        "reference's step-3 grid within --large-radius), pyramid (plus "
                        "coarse-to-fine up to it).")
    large_radius: int = param(500, help="Large-motion radius of grid/pyramid.")
    grid_step: int = param(3, help="Step of the grid search.")
    tile_size: int = param(50, help="Side of the training tiles.")
    tile_stride: int = param(30, help="Step between training tiles.")
    targets_per_tile: int = param(4, help="K, most targets kept per tile (training draws one "
                                  "of them each time it sees the tile).")
    mean_std: float = param(3.0, help="r_mean window half-width in std (3 synthetic, 1 real).")
    bins: int = param(50001, help="Histogram bins for choosing s_min.")
    noise: str = param("none", help="Synthetic noise to add: none, correlated-gaussian, camera, "
                       "or module:factory (see pcst_prep.noise).")
    noise_params: dict = param(default_factory=dict, cli=False,
                               help="Keyword arguments of the noise model (--sigma, --kernel, "
                               "--noise-param).")
    seed: int = param(0, help="Seed for the noise and the choice of targets.")
    keep_nnf: bool = param(False, help="Keep each burst's nnf in the store.")
    filter: bool = param(True, help="Apply the tile filter (--no-filter keeps every scored "
                         "pair: the no-filter ablation).")
    targets: str = param("patch-craft", choices=TRAINING_TARGETS,
                         help="patch-craft (the method) or neighbour: the raw next frame, no "
                         "matching (a naive Noise2Noise ablation).")
    holdout: float = param(0.2, help="Share of the input held out for clean-free validation "
                           "(whole sequences where there are several, else whole bursts with no "
                           "frame in common with a training burst); 0: none.")
    validation_patch_size: int | str = param(15, help="Window of ring validation targets, or p "
                                             "of patch-craft and guided ones (the same for "
                                             "every training p, so that runs compare); or auto: "
                                             "for ring targets 25 where the noise sigma that "
                                             "pcst-prep tune measures is at least 18 of 255 "
                                             "(less where the frames are narrower), else 15 "
                                             "(with --validation-from: the ring of the tiles "
                                             "copied); 15 for the others.")
    validation_targets: str = param("ring", choices=VALIDATION_TARGETS,
                                    help="How validation targets are matched: ring (each pixel "
                                    "by the ring around it, the pixel itself left out, so that "
                                    "the target's noise is not fitted to the input's), "
                                    "patch-craft (on the noisy burst, as training targets) or "
                                    "guided (on a smoothed copy); benchmarks/validation_terms.py "
                                    "compares them.")
    validation_tiles: int = param(64, help="At most this many validation tiles per held-out "
                                  "burst (its non-overlapping tiles, evenly spread).")
    validation_hole: int | str = param(3, help="Side of the square that ring validation targets "
                                       "leave out of the distance around the matched pixel "
                                       "(odd; it should span the noise's correlation length: "
                                       "3 for noise correlated over one pixel, as a camera's "
                                       "demosaicing makes it), or auto: from the noise "
                                       "correlation that pcst-prep tune measures (with "
                                       "--validation-from: the hole of the tiles copied).")
    store_format: int = param(2, help="Store layout: 2 stores each frame once, the nnf and the "
                              "table of kept (tile, offset) pairs, and the trainer crafts the "
                              "tiles; 1 stores every tile and K targets as float32 copies (22x "
                              "the bytes on the demo with paper-real settings, 77x on 1080p "
                              "footage: benchmarks/README.md).")
    pipeline: str = param("custom", cli=False, help="Name of the preset the build started from.")

    def __post_init__(self):
        def check(condition, message):
            if not condition:
                raise InputError(message)

        check(self.burst_length >= 3 and self.burst_length % 2 == 1,
              f"burst_length must be an odd number >= 3, got {self.burst_length}")
        check(self.frame_step >= 1, f"frame_step must be >= 1, got {self.frame_step}")
        check(self.burst_stride is None or self.burst_stride >= 1,
              f"burst_stride must be >= 1, got {self.burst_stride}")
        if isinstance(self.patch_size, str) and self.patch_size.strip().isdigit():
            object.__setattr__(self, "patch_size", int(self.patch_size))
        for name in ("validation_hole", "validation_patch_size"):
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().isdigit():
                object.__setattr__(self, name, int(value))
        check(self.patch_size == "auto" or (isinstance(self.patch_size, int)
                                            and 1 <= self.patch_size <= 255),
              f"patch_size must be auto or in [1, 255], got {self.patch_size!r}")
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
        target_kind(self.targets)
        check(self.targets in TRAINING_TARGETS,
              f"targets must be one of {', '.join(TRAINING_TARGETS)}, got {self.targets!r}")
        check(self.validation_targets in VALIDATION_TARGETS,
              f"validation_targets must be one of {', '.join(VALIDATION_TARGETS)}, got "
              f"{self.validation_targets!r}")
        get_noise_model(self.noise, **self.noise_params)  # a bad name or parameter: now
        check(0 <= self.holdout <= 0.5, f"holdout must be in [0, 0.5], got {self.holdout}")
        check(self.store_format in (1, 2),
              f"store_format must be 1 or 2, got {self.store_format!r}")
        check(self.store_format == 1 or self.targets == "patch-craft",
              f"targets {self.targets!r} needs store_format 1 (the trainer crafts only "
              "patch-craft targets)")
        window = self.validation_patch_size
        check(window == "auto" or (isinstance(window, int) and 1 <= window <= 255),
              f"validation_patch_size must be auto or in [1, 255], got {window!r}")
        check(self.validation_tiles >= 1,
              f"validation_tiles must be >= 1, got {self.validation_tiles}")
        if self.validation_targets == "ring":
            check(window == "auto" or window % 2 == 1,
                  f"ring validation targets need an odd validation_patch_size, got {window}")
            hole = self.validation_hole
            smallest = RING_SIZES[0] if window == "auto" else window  # auto: at least that
            check(hole == "auto" or (isinstance(hole, int) and hole >= 0 and (hole == 0 or (
                hole % 2 == 1 and hole < smallest))),
                  f"validation_hole must be auto, 0 or odd and smaller than "
                  f"validation_patch_size ({window}"
                  + (f": at least {smallest}" if window == "auto" else "") + f"), got {hole!r}")

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


def known_pipelines() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name.removesuffix(".toml") for p in PRESETS.iterdir()
                  if p.name.endswith(".toml"))


def pipeline_text(name: str) -> tuple[str, str]:
    """(where, TOML text) of the preset ``name``: a path to a .toml file, or a shipped name."""
    candidate = Path(name)
    if candidate.suffix == ".toml":
        if not candidate.is_file():
            raise InputError("no such pipeline file", candidate)
        return str(candidate), candidate.read_text()
    preset = PRESETS / f"{name}.toml"
    if not preset.is_file():
        raise InputError(f"unknown pipeline {name!r} (known: {', '.join(known_pipelines())})")
    return f"pipelines/{name}.toml", preset.read_text()


def load_pipeline(name: str, **overrides) -> BuildConfig:
    """A :class:`BuildConfig` from a pipeline preset, with ``overrides`` (None means unset).

    Examples
    --------
    >>> config = load_pipeline("paper-synthetic", patch_size=31)
    >>> config.patch_size, config.search_radius, config.noise_params["sigma"]
    (31, 37, 20.0)
    """
    where, text = pipeline_text(name)
    try:
        preset = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"bad pipeline file ({exc})", where) from None
    preset.pop("version", None)
    preset.pop("description", None)
    preset["pipeline"] = preset.pop("name", Path(where).stem)
    fields = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = set(preset) - fields
    if unknown:
        raise InputError(f"unknown parameters {sorted(unknown)}", where)
    preset.update({k: v for k, v in overrides.items() if v is not None})
    return BuildConfig(**preset)
