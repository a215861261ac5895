"""The trainer's bad inputs: untrusted or foreign checkpoints, impossible numbers, resumes
that would mix runs. One line each (exit 2), no traceback, nothing written (issues 12.5 to
12.7)."""

import pickle
from pathlib import Path

import pytest
import torch

from conftest import TRAIN, assert_one_line_error, run, tree


class Boom:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


@pytest.fixture
def bad_checkpoints(tmp_path):
    (tmp_path / "text.pt").write_text("hello, I am text\n")
    (tmp_path / "zip.pt").write_bytes(b"PK\x03\x04 truncated zip")
    torch.save({"format": "pcst-checkpoint", "payload": Boom(tmp_path / "pwned")},
               tmp_path / "evil.pt")
    with open(tmp_path / "pickle.pt", "wb") as f:  # a plain pickle, not torch's zip format
        pickle.dump(Boom(tmp_path / "pwned"), f)
    return tmp_path


@pytest.mark.parametrize("name, fragment", [
    ("text.pt", "not a PyTorch checkpoint file"),
    ("zip.pt", "not a PyTorch checkpoint file"),
    ("evil.pt", "could run code when loaded"),
    ("pickle.pt", "could run code when loaded"),
])
@pytest.mark.parametrize("command", ["denoise", "evaluate", "init"])
def test_a_bad_checkpoint_is_refused_in_plain_words_and_runs_nothing(bad_checkpoints, store_copy,
                                                                     demo_dir, name, fragment,
                                                                     command):
    checkpoint, out = bad_checkpoints / name, bad_checkpoints / "out"
    if command == "denoise":
        result = run(TRAIN, "denoise", checkpoint, demo_dir / "frame_000.png", out / "x.png")
    elif command == "evaluate":
        result = run(TRAIN, "evaluate", checkpoint, "--store", store_copy)
    else:
        result = run(TRAIN, store_copy, "--out", out, "--init", checkpoint, "--steps", "2")
    error = assert_one_line_error(result, name, fragment)
    assert "weights_only" not in error  # torch's advice to load unsafely is never shown
    assert not (bad_checkpoints / "pwned").exists() and not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["STORE", "--out", "run", "--lr", "nan"], "learning rate must be a number > 0, got nan"),
    (["STORE", "--out", "run", "--steps", "0"], "epochs and steps must be >= 1"),
    (["evaluate", "pretrained", "--store", "STORE", "--limit", "-1"], "--limit must be >= 1"),
    (["denoise", "pretrained", "FRAME", "out.png", "--tile", "0"],
     "--tile (0) must be larger than twice --overlap (32)"),
    (["denoise", "pretrained", "FRAME", "out.png", "--tile", "64", "--overlap", "32"],
     "--tile (64) must be larger than twice --overlap"),
])
def test_impossible_numbers_are_refused_before_any_work(store_copy, demo_dir, tmp_path, args,
                                                        fragment):
    values = {"STORE": store_copy, "FRAME": demo_dir / "frame_000.png"}
    folder = tmp_path / "cwd"
    folder.mkdir()
    result = run(TRAIN, *[values.get(a, a) for a in args], cwd=folder)
    assert_one_line_error(result, fragment)
    assert not any(folder.iterdir())  # no out.png, no run folder


def test_a_resume_that_would_mix_runs_is_refused(held_out_copy, store_copy, small_model,
                                                 tmp_path):
    run_dir = tmp_path / "run"
    common = ["--out", run_dir, "--model", "dncnn", "--init", small_model, "--batch-size", "4",
              "--no-progress"]
    assert run(TRAIN, held_out_copy, *common, "--steps", "4", "--lr", "0.001").returncode == 0
    before = tree(run_dir)

    cases = [
        (run(TRAIN, held_out_copy, *common, "--resume", "--lr", "0.01"),
         "--lr 0.01 differs from the run being resumed (0.001)"),
        (run(TRAIN, held_out_copy, *common[:2], "--model", "unet", "--resume"),
         "--model unet differs from the run being resumed (dncnn)"),
        (run(TRAIN, store_copy, *common, "--resume"), f"trained on {held_out_copy}, not"),
    ]

    for result, fragment in cases:
        assert_one_line_error(result, fragment)
    assert tree(run_dir) == before  # the run is untouched


def test_a_folder_given_as_the_checkpoint_is_named_as_such(store_copy, demo_dir, tmp_path):
    """A store (or a run folder) where a checkpoint file belongs: the error says it is a
    folder, and for a run folder names the file to give."""
    result = run(TRAIN, "denoise", store_copy, demo_dir / "frame_000.png", tmp_path / "x.png")
    assert_one_line_error(result, str(store_copy), "is a folder, not a checkpoint file (a store?)")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(b"")
    result = run(TRAIN, "denoise", run_dir, demo_dir / "frame_000.png", tmp_path / "x.png")
    assert_one_line_error(result, f"give {run_dir / 'best.pt'}")
    assert not (tmp_path / "x.png").exists()
