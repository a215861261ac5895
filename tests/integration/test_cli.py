"""pcst-prep from the command line: output, errors (one line, exit 2), kill -9 and resume."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from pcst_prep.cli import main
from helpers import assert_same_store, write_frames

pytestmark = pytest.mark.slow

TINY = ["--burst-length", "3", "--burst-stride", "2", "--patch-size", "7", "--search-radius",
        "3", "--tile-size", "20", "--tile-stride", "12", "--targets-per-tile", "3",
        "--sigma", "20", "--kernel", "2", "--seed", "3", "--holdout", "0", "--no-progress"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_line_error(code, output, *fragments):
    assert code == 2, output
    lines = output.strip().splitlines()
    errors = [line for line in lines if line.startswith("pcst-prep: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], output  # one line, the last word
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.mark.parametrize("command", [[], ["build"], ["histogram"], ["info"]])
def test_help_on_every_command(command):
    code, output = run(*command, "--help")
    assert code == 0 and "Usage:" in output


def test_build_histogram_info(tiny_input, tmp_path):
    store = tmp_path / "cli.zarr"
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY)
    assert code == 0, output
    assert "built" in output and "training tiles" in output and "status         complete" in output

    code, output = run("histogram", store, "--png", tmp_path / "h.png", "--bins", "60")
    assert code == 0, output
    for label in ("scored pairs", "kept pairs", "peak", "s_min", "mean before", "mean after",
                  "r_mean window", "<- s_min"):
        assert label in output
    png = (tmp_path / "h.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    code, output = run("info", store)
    assert code == 0
    group = zarr.open_group(str(store), mode="r")
    assert f"{group.attrs['filter']['s_min']:.5g}" in output
    assert "scene_a: 7 frames 60x80x3" in output and "size on disk" in output
    assert f"samples        {group['samples/input'].shape[0]:,} tiles" in output


def test_mismatched_resume_exits_2(tiny_input, tmp_path):
    store = tmp_path / "m.zarr"
    assert run("build", tiny_input, store, "--pipeline", "demo", *TINY)[0] == 0
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY, "--seed", "4")
    assert_one_line_error(code, output, "m.zarr", "different seed (stored 3, now 4)",
                          "--overwrite")


@pytest.fixture
def bad_inputs(tmp_path, demo_frames):
    good = demo_frames[:5, :60, :80]
    write_frames(tmp_path / "good", good)
    write_frames(tmp_path / "short", good[:2])
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "clip.mp4").write_bytes(b"\x00" * 100)
    write_frames(tmp_path / "corrupt", good)
    (tmp_path / "corrupt" / "f1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return tmp_path


@pytest.mark.parametrize("folder, fragments", [
    ("empty", ["empty", "holds no video file or folder of frames"]),
    ("broken", ["clip.mp4", "cannot read video"]),
    ("short", ["short", "has 2 frames, fewer than one burst needs (3"]),
    ("corrupt", ["f1.png"]),
])
def test_bad_inputs(bad_inputs, tmp_path, folder, fragments):
    store = tmp_path / "out.zarr"
    code, output = run("build", bad_inputs / folder, store, "--pipeline", "demo", *TINY)
    assert_one_line_error(code, output, *fragments)
    assert not store.exists()  # nothing half-written


def test_skip_bad_lists_each_skipped_sequence(bad_inputs, tmp_path):
    shutil.rmtree(bad_inputs / "empty")
    store = tmp_path / "skip.zarr"
    code, output = run("build", bad_inputs, store, "--pipeline", "demo", *TINY, "--skip-bad")
    assert code == 0, output
    warnings = [line for line in output.splitlines() if line.startswith("pcst-prep: warning")]
    assert len(warnings) == 3
    for name in ("clip.mp4", "short", "f1.png"):
        assert any(name in w for w in warnings)
    assert "good: 5 frames" in output


def test_store_path_that_is_not_ours_is_left_alone(tiny_input, tmp_path):
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    for extra in ([], ["--overwrite"]):
        code, output = run("build", tiny_input, precious, "--pipeline", "demo", *TINY, *extra)
        assert_one_line_error(code, output, "results", "is not a pcst store")
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_unwritable_store_path(tiny_input, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, output = run("build", tiny_input, blocker / "store.zarr", "--pipeline", "demo", *TINY)
    assert_one_line_error(code, output, "store.zarr", "cannot create store")


def test_unknown_pipeline_and_bad_values(tiny_input, tmp_path):
    code, output = run("build", tiny_input, tmp_path / "s.zarr", "--pipeline", "nope")
    assert_one_line_error(code, output, "unknown pipeline 'nope'", "paper-synthetic")
    code, output = run("build", tiny_input, tmp_path / "s.zarr", "--burst-length", "4")
    assert_one_line_error(code, output, "burst_length must be an odd number")
    code, output = run("histogram", tmp_path / "missing.zarr")
    assert_one_line_error(code, output, "missing.zarr", "no such store")


def test_kill_9_then_resume_equals_an_uninterrupted_build(demo_dir, tmp_path):
    args = ["--pipeline", "demo", "--burst-length", "3", "--burst-stride", "1", "--patch-size",
            "15", "--search-radius", "20", "--tile-size", "40", "--tile-stride", "40",
            "--targets-per-tile", "2", "--no-progress"]
    killed, reference = tmp_path / "killed.zarr", tmp_path / "reference.zarr"
    command = [sys.executable, "-c", "from pcst_prep.cli import main; main()", "build",
               str(demo_dir), str(killed), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n_scored, deadline = 0, time.time() + 120
    try:
        while time.time() < deadline and process.poll() is None:
            try:
                n_scored = int(zarr.open_group(str(killed), mode="r")["bursts/scored"][:].sum())
            except Exception:  # not created yet
                n_scored = 0
            if n_scored >= 2:
                break
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert 2 <= n_scored < 19, "the build must be killed in the middle of stage 1"
    assert zarr.open_group(str(killed), mode="r").attrs["status"] == "building"

    assert run("build", demo_dir, killed, *args)[0] == 0          # resume
    assert run("build", demo_dir, reference, *args)[0] == 0       # uninterrupted
    assert_same_store(killed, reference)


def test_full_disk_is_one_line_and_resumable(tiny_input, tmp_path, monkeypatch):
    import errno

    import pcst_prep.build as build_module

    store = tmp_path / "full.zarr"
    real = build_module.materialise_chunk

    def no_space(store_path, config, bursts, chunk, n_threads):
        if chunk == 1:
            raise OSError(errno.ENOSPC, "No space left on device", f"{store_path}/samples/c/1")
        return real(store_path, config, bursts, chunk, n_threads)

    monkeypatch.setattr(build_module, "materialise_chunk", no_space)
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY)
    assert_one_line_error(code, output, "No space left on device", "run the same command again")
    assert zarr.open_group(str(store), mode="r").attrs["status"] == "building"
    monkeypatch.setattr(build_module, "materialise_chunk", real)
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY)
    assert code == 0 and "resumed and finished" in output


def test_two_builds_of_one_store_at_once_the_second_is_refused(tmp_path, demo_dir):
    import subprocess
    import sys
    import time

    store = tmp_path / "demo.zarr"
    command = [sys.executable, "-c", "from pcst_prep.cli import main; main()", "build",
               str(demo_dir.parent), str(store), "--pipeline", "demo", "--no-progress"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "demo.zarr.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), "the first build never took its lock"

    second = subprocess.run(command, capture_output=True, text=True)
    first_out, first_err = first.communicate(timeout=300)

    assert second.returncode == 2
    refusal = second.stderr.strip().splitlines()[-1]
    assert refusal.startswith(f"pcst-prep: error: {lock}: is being built by process {first.pid}")
    assert first.returncode == 0, first_err
    assert not lock.exists()
