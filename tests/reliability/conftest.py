"""The reliability battery (issue 12): real faults on real files, through the command lines.

Every case runs the installed code in a subprocess (``python -m pcst_prep.cli`` or
``pcst_train.cli``), so that exit statuses, stderr, signals and resource limits are the real
ones, and asserts three things: the exit status, the one-line message, and that nothing was
lost or half-written.
"""

import os
import resource
import shutil
import subprocess
import sys

import pytest

PREP = [sys.executable, "-m", "pcst_prep.cli"]
TRAIN = [sys.executable, "-m", "pcst_train.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PCST_PROGRESS_SECONDS": "1"}

# The tiny build of tests/conftest.py's tiny_config, as options.
TINY = ["--pipeline", "demo", "--burst-length", "3", "--burst-stride", "2", "--patch-size", "7",
        "--search-radius", "3", "--tile-size", "20", "--tile-stride", "12",
        "--targets-per-tile", "3", "--sigma", "20", "--kernel", "2", "--seed", "3",
        "--holdout", "0", "--no-progress"]


def command(program, *args):
    return [*program, *map(str, args)]


def run(program, *args, file_size_limit: int | None = None, timeout: int = 300, cwd=None):
    """Run a command line to its end; ``file_size_limit`` (bytes) makes every larger write
    fail as a full disk would (EFBIG)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(command(program, *args), capture_output=True, text=True, env=ENV,
                          timeout=timeout, preexec_fn=limit if file_size_limit else None,
                          cwd=cwd)


def start(program, *args):
    return subprocess.Popen(command(program, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def assert_one_line_error(result, *fragments):
    """Exit status 2 and one error line, the last of stderr, holding every fragment; no
    traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def input_copy(tiny_input, tmp_path):
    """A copy of the tiny input that a test may damage."""
    folder = tmp_path / "input"
    shutil.copytree(tiny_input, folder)
    return folder


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A small DnCNN checkpoint (4 layers of 8 kernels): training runs of seconds."""
    import torch

    from pcst_train.checkpoints import save_checkpoint
    from pcst_train.models import build_model

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "small.pt",
                           build_model("dncnn", layers=4, kernels=8), "dncnn")


@pytest.fixture
def held_out_copy(held_out_store, tmp_path):
    path = tmp_path / "held_out.zarr"
    shutil.copytree(held_out_store, path)
    return path


def tree(path):
    """Every file below ``path`` with its bytes (what 'nothing lost' compares)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}
