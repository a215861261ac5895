"""Bad input and bad options: refused in one line (exit 2) before a store exists (issue 12.3).

Every input frame a build uses is decoded before the store is created, so a truncated or NaN
frame anywhere (also in the held-out sequence, the last one a build reads) leaves no store
behind, and the corrected command then needs no --overwrite.
"""

import numpy as np
import pytest
import tifffile

from conftest import PREP, TINY, assert_one_line_error, run
from helpers import write_frames


def truncate(path):
    """Keep the PNG signature and header, lose the pixels' second half."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


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
    write_frames(tmp_path / "truncated", good)
    truncate(tmp_path / "truncated" / "f4.png")
    write_frames(tmp_path / "text", good)
    (tmp_path / "text" / "f2.png").write_text("not an image\n")
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        (tmp_path / name).mkdir()
        for i, frame in enumerate(good):
            frame = frame.copy()
            if i == 3:
                frame[5, 5, 1] = value
            tifffile.imwrite(tmp_path / name / f"f{i}.tif", frame, photometric="rgb")
    write_frames(tmp_path / "sizes", good)
    write_frames(tmp_path / "sizes" / "tmp", good[:1, :50])
    (tmp_path / "sizes" / "tmp" / "f0.png").rename(tmp_path / "sizes" / "f5.png")
    return tmp_path


@pytest.mark.parametrize("folder, fragments", [
    ("empty", ["empty", "holds no video file or folder of frames"]),
    ("broken", ["clip.mp4", "cannot read video"]),
    ("short", ["short", "has 2 frames, fewer than one burst needs (3"]),
    ("corrupt", ["corrupt/f1.png"]),
    ("truncated", ["truncated/f4.png", "cannot decode image"]),
    ("text", ["text/f2.png", "not a PNG file"]),
    ("nan", ["nan/f3.tif", "contains NaN or infinite values"]),
    ("inf", ["inf/f3.tif", "contains NaN or infinite values"]),
    ("sizes", ["sizes/f5.png", "frame is 50x80 but f0.png is 60x80"]),
    ("missing", ["missing", "no such file or directory"]),
])
def test_a_bad_input_is_named_before_a_store_exists(bad_inputs, tmp_path, folder, fragments):
    store = tmp_path / "out.zarr"
    result = run(PREP, "build", bad_inputs / folder, store, *TINY)
    assert_one_line_error(result, *fragments)
    assert not store.exists() and not (tmp_path / "out.zarr.lock").exists()


@pytest.mark.parametrize("options, fragments", [
    (["--sigma", "-20"], ["sigma must be >= 0, got -20"]),
    (["--kernel", "0"], ["kernel_size must be >= 1, got 0"]),
    (["--noise", "bogus"], ["bogus"]),
    (["--burst-length", "4"], ["burst_length must be an odd number"]),
    (["--pipeline", "nope"], ["unknown pipeline 'nope'", "paper-synthetic"]),
    (["--workers", "0"], ["--workers must be >= 1"]),
])
def test_a_bad_option_is_refused_before_a_store_exists(tiny_input, tmp_path, options,
                                                       fragments):
    store = tmp_path / "out.zarr"
    result = run(PREP, "build", tiny_input, store, *TINY, *options)
    assert_one_line_error(result, *fragments)
    assert not store.exists()


def test_a_truncated_held_out_frame_then_the_corrected_command_needs_no_overwrite(
        input_copy, tmp_path):
    frame = input_copy / "scene_b" / "f2.png"  # scene_b is the held-out sequence
    original = frame.read_bytes()
    truncate(frame)
    store = tmp_path / "s.zarr"
    holdout = [*TINY, "--holdout", "0.5", "--validation-patch-size", "15"]

    assert_one_line_error(run(PREP, "build", input_copy, store, *holdout),
                          "scene_b/f2.png", "cannot decode image")
    assert not store.exists()
    frame.write_bytes(original)
    result = run(PREP, "build", input_copy, store, *holdout)
    assert result.returncode == 0, result.stderr
    assert "built" in result.stdout and "held-out validation tiles" in result.stdout


def test_skip_bad_leaves_out_each_bad_sequence_and_says_why(bad_inputs, tmp_path):
    store = tmp_path / "skip.zarr"
    result = run(PREP, "build", bad_inputs, store, *TINY, "--skip-bad")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith("pcst-prep: warning: skipped")]
    for name in ("clip.mp4", "short", "corrupt/f1.png", "truncated/f4.png", "text/f2.png",
                 "nan/f3.tif", "inf/f3.tif", "sizes/f5.png"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)
    assert len(warnings) == 8
    assert "good: 5 frames" in result.stdout  # the one good sequence was built


def test_a_store_path_that_is_not_ours_is_left_alone(tiny_input, tmp_path):
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    for extra in ([], ["--overwrite"]):
        assert_one_line_error(run(PREP, "build", tiny_input, precious, *TINY, *extra),
                              "results", "is not a pcst store")
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_an_unwritable_store_path(tiny_input, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert_one_line_error(run(PREP, "build", tiny_input, blocker / "store.zarr", *TINY),
                          "store.zarr", "cannot create store")
