import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "bigbuckbunny"
sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py


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
