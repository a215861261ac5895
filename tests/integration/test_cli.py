"""pcst-prep from the command line: output, help, one-line errors (faults: tests/reliability)."""

import pytest
import zarr
from click.testing import CliRunner

from pcst_prep.cli import main

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
    # seed 1: a noise draw whose scores have a negative tail for s_min to cut
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY, "--seed", "1")
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
    assert f"samples        {group['bursts/tiles'][-1]:,} tiles" in output


def test_mismatched_resume_exits_2(tiny_input, tmp_path):
    store = tmp_path / "m.zarr"
    assert run("build", tiny_input, store, "--pipeline", "demo", *TINY)[0] == 0
    code, output = run("build", tiny_input, store, "--pipeline", "demo", *TINY, "--seed", "4")
    assert_one_line_error(code, output, "m.zarr", "different seed (stored 3, now 4)",
                          "--overwrite")


def test_unknown_pipeline_and_bad_values(tiny_input, tmp_path):
    code, output = run("build", tiny_input, tmp_path / "s.zarr", "--pipeline", "nope")
    assert_one_line_error(code, output, "unknown pipeline 'nope'", "paper-synthetic")
    code, output = run("build", tiny_input, tmp_path / "s.zarr", "--burst-length", "4")
    assert_one_line_error(code, output, "burst_length must be an odd number")
    code, output = run("histogram", tmp_path / "missing.zarr")
    assert_one_line_error(code, output, "missing.zarr", "no such store")

