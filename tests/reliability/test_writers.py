"""One store, one writer, one set of inputs: a second writer is refused naming the holder, a
killed writer's lock is taken over, and a resume whose input files changed is refused naming
the file (issues 12.1 and 12.2)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import imagecodecs
import pytest
import zarr

from conftest import PREP, TINY, assert_one_line_error, run, start


def test_a_resume_whose_input_pixels_changed_is_refused_naming_the_file(input_copy, tmp_path):
    store = tmp_path / "s.zarr"
    assert run(PREP, "build", input_copy, store, *TINY).returncode == 0
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    frame = input_copy / "scene_a" / "f1.png"
    pixels = imagecodecs.png_decode(frame.read_bytes())
    pixels[10, 10] ^= 1  # one pixel, same size and format
    frame.write_bytes(imagecodecs.png_encode(pixels))

    result = run(PREP, "build", input_copy, store, *TINY)

    assert_one_line_error(result, "input files: scene_a/f1.png changed since it was built",
                          "--overwrite")
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_build_killed_half_way_then_given_changed_inputs_is_refused(input_copy, tmp_path):
    store = tmp_path / "s.zarr"
    options = [*TINY, "--tile-stride", "4"]
    process = start(PREP, "build", input_copy, store, *options)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if zarr.open_group(str(store), mode="r")["bursts/scored"][:].any():
                break
        except Exception:  # not created yet
            pass
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert zarr.open_group(str(store), mode="r").attrs["status"] == "building"
    shutil.copy(input_copy / "scene_a" / "f0.png", input_copy / "scene_a" / "f2.png")

    result = run(PREP, "build", input_copy, store, *options)

    assert_one_line_error(result, "scene_a/f2.png changed since it was built")


def test_a_second_writer_is_refused_naming_the_holder(tiny_input, tmp_path):
    store = tmp_path / "s.zarr"
    lock = tmp_path / "s.zarr.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                    "since": "2026-11-25 10:00:00"}))
        result = run(PREP, "build", tiny_input, store, *TINY)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(result, f"is being built by process {holder.pid} on ")
    assert not store.exists() and lock.exists()  # nothing written, the holder's lock kept


def test_a_stale_lock_of_a_killed_build_is_taken_over(tiny_input, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    store = tmp_path / "s.zarr"
    lock = tmp_path / "s.zarr.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead),
                                "since": "2026-11-25 10:00:00"}))

    result = run(PREP, "build", tiny_input, store, *TINY)

    assert result.returncode == 0, result.stderr
    assert not lock.exists()


@pytest.mark.slow
def test_two_builds_of_one_store_at_once_the_second_is_refused(tmp_path, demo_dir):
    store = tmp_path / "demo.zarr"
    lock = tmp_path / "demo.zarr.lock"
    args = ["build", demo_dir.parent, store, "--pipeline", "demo", "--no-progress"]
    first = start(PREP, *args)
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock.exists(), "the first build never took its lock"

    second = run(PREP, *args)
    _, first_err = first.communicate(timeout=300)

    assert_one_line_error(second, f"{lock}: is being built by process {first.pid}")
    assert first.returncode == 0, first_err
    assert not lock.exists()
    assert os.path.isdir(store)


def test_readers_of_a_store_being_built_say_so_instead_of_build_again(store_copy, tmp_path):
    from click.testing import CliRunner

    from pcst_prep.cli import main as prep
    from pcst_train.cli import main as train

    group = zarr.open_group(str(store_copy), mode="r+")
    group.attrs["status"] = "building"
    lock = store_copy.parent / f"{store_copy.name}.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                    "since": "2026-11-26 10:00:00"}))
        runner = CliRunner()
        # past stage 2 the histogram can be drawn while the build goes on
        drawn = runner.invoke(prep, ["histogram", str(store_copy)])
        del group.attrs["filter"]  # before stage 2: nothing to draw yet
        results = [runner.invoke(prep, ["histogram", str(store_copy)]),
                   runner.invoke(train, [str(store_copy), "--out", str(tmp_path / "run")])]
    finally:
        holder.kill()
        holder.wait()
    assert drawn.exit_code == 0 and "s_min" in drawn.output, drawn.output
    for result in results:
        assert result.exit_code == 2
        assert f"is being built by process {holder.pid} on " in result.output
        assert "again" not in result.output.replace("delete the lock", "")
    # once the holder is gone (a killed build), the advice is to run the build again
    lock.unlink()
    result = CliRunner().invoke(train, [str(store_copy), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "run the same pcst-prep build command again" in \
        result.output, result.output
