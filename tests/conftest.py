import sys
from pathlib import Path

import shutil

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "bigbuckbunny"
sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py, tests/helpers.py

from helpers import write_frames  # noqa: E402


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def demo_frames() -> np.ndarray:
    """The bundled demo sequence, float32 [21, 180, 320, 3]."""
    from pcst_prep.bursts import read_sequence

    return read_sequence(DEMO)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_input(tmp_path_factory, demo_dir):
    """Two short real sequences (crops of the demo), 16-bit PNG frames."""
    from pcst_prep.bursts import read_sequence

    frames = read_sequence(demo_dir)
    root = tmp_path_factory.mktemp("tiny_input")
    write_frames(root / "scene_a", frames[:7, 30:90, 40:120])
    write_frames(root / "scene_b", frames[7:12, 100:160, 200:300])
    return root


@pytest.fixture(scope="session")
def tiny_config():
    from pcst_prep.config import BuildConfig

    return BuildConfig(burst_length=3, burst_stride=2, patch_size=7, search_radius=3,
                       tile_size=20, tile_stride=12, targets_per_tile=3, bins=501,
                       noise="correlated-gaussian", noise_params={"sigma": 20.0, "kernel_size": 2},
                       seed=3, keep_nnf=True, holdout=0.0, pipeline="test")


def _built(tmp_path_factory, name, input_dir, config):
    from pcst_prep.build import build

    path = tmp_path_factory.mktemp("stores") / name
    build(input_dir, path, config, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_input, tiny_config):
    return _built(tmp_path_factory, "tiny.zarr", tiny_input, tiny_config)


@pytest.fixture(scope="session")
def tiny_store_v1(tmp_path_factory, tiny_input, tiny_config):
    """The tiny build as a format-1 store (every tile and target copied)."""
    return _built(tmp_path_factory, "tiny_v1.zarr", tiny_input,
                  tiny_config.replace(store_format=1))


@pytest.fixture
def store_copy(tiny_store, tmp_path):
    path = tmp_path / "copy.zarr"
    shutil.copytree(tiny_store, path)
    return path


@pytest.fixture(scope="session")
def held_out_store(tmp_path_factory, tiny_input, tiny_config):
    """The tiny build with one of its two sequences (scene_b) held out for validation."""
    return _built(tmp_path_factory, "held_out.zarr", tiny_input,
                  tiny_config.replace(holdout=0.5, validation_patch_size=15))
