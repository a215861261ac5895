"""Small frictions of a user's day: versions, which parameter differs, why s_min cuts nothing."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow
TINY = ["--burst-length", "3", "--burst-stride", "2", "--patch-size", "7", "--search-radius",
        "3", "--tile-size", "20", "--tile-stride", "12", "--holdout", "0", "--bins", "501",
        "--no-progress"]


@pytest.mark.parametrize("module, name", [("pcst_prep.cli", "pcst-prep"),
                                          ("pcst_train.cli", "pcst-train")])
def test_both_command_lines_print_their_version(module, name):
    result = subprocess.run([sys.executable, "-c", f"from {module} import main; main()",
                             "--version"], capture_output=True, text=True)

    assert result.returncode == 0 and result.stdout.startswith(f"{name}, version ")


def test_a_store_of_other_settings_names_the_parameter_that_differs(tiny_input, tmp_path):
    from pcst_prep.cli import main

    store = str(tmp_path / "s.zarr")
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(tiny_input), store, "--pipeline", "demo",
                                *TINY]).exit_code == 0

    result = runner.invoke(main, ["build", str(tiny_input), store, "--pipeline", "demo",
                                  *TINY, "--seed", "9"])

    assert result.exit_code == 2
    assert "different seed (stored 0, now 9); use --overwrite" in result.output
    # the same build again: a finished store is said to be so, not "resumed"
    again = runner.invoke(main, ["build", str(tiny_input), store, "--pipeline", "demo", *TINY])
    assert again.exit_code == 0 and f"already built (nothing to do) {store}" in again.output


def test_histogram_says_why_s_min_cuts_nothing(tiny_input, tmp_path):
    from pcst_prep.cli import main

    store = str(tmp_path / "s.zarr")
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(tiny_input), store, "--pipeline", "demo",
                                *TINY, "--no-filter"]).exit_code == 0

    result = runner.invoke(main, ["histogram", store, "--png", str(tmp_path / "h.png")])

    assert result.exit_code == 0, result.output
    assert "below every score: the store was built with --no-filter" in result.output


def test_training_off_a_terminal_prints_progress_lines(tiny_store, tmp_path):
    import os

    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", "from pcst_train.cli import main; main()", str(tiny_store),
         "--out", str(run), "--steps", "6", "--batch-size", "4", "--log-every", "2"],
        capture_output=True, text=True, env={**os.environ, "PCST_PROGRESS_SECONDS": "0"})

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: ")]
    assert lines[0].startswith("train: 1/6 steps (17%)") and "steps/s" in lines[0]
    assert "left, loss " in lines[-1] and lines[-1].startswith("train: 6/6 steps (100%)")


@pytest.mark.parametrize("module, args, says", [
    ("pcst_prep.cli", ["build", "--help"],
     "Processes that match and score bursts, on a Dask cluster started on this machine"),
    ("pcst_train.cli", ["train", "--help"],
     "Processes that read and decode the store's tiles ahead of training (PyTorch DataLoader "
     "workers; 0: the training process reads them itself)"),
])
def test_each_workers_option_says_what_it_starts(module, args, says):
    main = __import__(module, fromlist=["main"]).main

    result = CliRunner().invoke(main, args, terminal_width=100)

    text = " ".join(result.output.split())
    assert result.exit_code == 0 and says in text
    assert "--workers is another thing" in text  # each names the other's meaning


def test_build_refuses_workers_with_a_scheduler(tiny_input, tmp_path):
    from pcst_prep.cli import main

    result = CliRunner().invoke(main, ["build", str(tiny_input), str(tmp_path / "s.zarr"),
                                       "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])

    assert result.exit_code == 2
    assert result.output == ("pcst-prep: error: --workers 2 starts a local cluster, --scheduler "
                             "uses another one: give one of them\n")
    assert not (tmp_path / "s.zarr").exists()


def test_a_new_training_never_silently_replaces_a_run(tiny_store, tmp_path):
    from pcst_train.cli import main

    run, args = tmp_path / "run", ["--steps", "2", "--batch-size", "4", "--no-progress"]
    runner = CliRunner()
    first = runner.invoke(main, [str(tiny_store), "--out", str(run), *args])
    assert first.exit_code == 0, first.output
    before = (run / "log.csv").read_text()

    again = runner.invoke(main, [str(tiny_store), "--out", str(run), *args])
    assert again.exit_code == 2
    assert "holds a run already (last.pt, final.pt, log.csv); --resume continues it, " \
        "--overwrite replaces it" in again.output
    assert (run / "log.csv").read_text() == before  # untouched
    # a resume must continue this folder's own run, and not beside --overwrite
    other = tmp_path / "other"
    assert runner.invoke(main, [str(tiny_store), "--out", str(other), *args]).exit_code == 0
    mixed = runner.invoke(main, [str(tiny_store), "--out", str(run), *args,
                                 "--resume", str(other / "last.pt")])
    assert mixed.exit_code == 2 and "would not continue" in mixed.output, mixed.output
    both = runner.invoke(main, [str(tiny_store), "--out", str(run), *args, "--resume",
                                "--overwrite"])
    assert both.exit_code == 2 and "not both" in both.output, both.output
    assert (run / "log.csv").read_text() == before
    # --overwrite starts afresh: the old run's files go, the user's own stay
    (run / "validated").mkdir()
    (run / "validated" / "step_000001.pt").write_bytes(b"old")
    (run / "notes.txt").write_text("mine")
    replaced = runner.invoke(main, [str(tiny_store), "--out", str(run), *args, "--steps", "3",
                                    "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert (run / "log.csv").read_text() != before
    assert not (run / "validated").exists() and (run / "notes.txt").read_text() == "mine"
