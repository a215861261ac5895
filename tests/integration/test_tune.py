"""Choosing p from the noisy input alone: pcst-prep tune and --patch-size auto."""

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from pcst_prep.cli import main
from pcst_prep.config import BuildConfig
from pcst_prep.tune import format_report, tune

pytestmark = pytest.mark.slow
NOISY = BuildConfig(burst_length=3, search_radius=8, tile_size=20, tile_stride=12, bins=501,
                    noise="correlated-gaussian", noise_params={"sigma": 20.0, "kernel_size": 3},
                    holdout=0.0, seed=1)


@pytest.fixture(scope="module")
def report(tiny_input):
    return tune(tiny_input, NOISY, candidates=(7, 15, 25), n_bursts=2)


def test_tune_estimates_the_noise_it_was_given(report):
    assert report.noise_sigma == pytest.approx(20.0, rel=0.15)
    # box-filtered noise of width 3: correlation 2/3, 1/3, 0 at lags 1, 2, 3 (and beyond)
    np.testing.assert_allclose(report.noise_correlation, [2 / 3, 1 / 3, 0, 0, 0, 0], atol=0.12)
    assert report.validation_hole == 3  # lag 2's 1/3 is below the threshold


def test_tune_chooses_the_smallest_p_that_does_not_fit_the_noise(report):
    fits = [c.noise_fit for c in report.candidates]

    assert [c.patch_size for c in report.candidates] == [7, 15, 25]
    assert min(fits[0], fits[1]) > fits[2] == 0.0  # smaller patches copy more of the noise
    chosen = next(c for c in report.candidates if c.patch_size == report.patch_size)
    assert chosen.noise_fit <= report.fit_limit
    assert all(c.noise_fit > report.fit_limit for c in report.candidates
               if c.patch_size < report.patch_size)


def test_the_report_says_when_the_largest_p_is_only_the_default(report):
    import dataclasses

    fallback = format_report(dataclasses.replace(report, patch_size=25))
    chosen = format_report(dataclasses.replace(report, patch_size=15))

    assert "no smaller p came under the limit" in fallback
    assert "--patch-size 7 and compare" in fallback  # the smallest candidate, to check with
    assert "no smaller p" not in chosen and "recommended: --patch-size 15" in chosen


def test_tune_command_prints_the_evidence_and_writes_a_plot(tiny_input, tmp_path):
    result = CliRunner().invoke(main, [
        "tune", str(tiny_input), "--burst-length", "3", "--search-radius", "8",
        "--tile-size", "20", "--tile-stride", "12", "--bins", "501", "--bursts", "1",
        "--noise", "correlated-gaussian", "--sigma", "20", "--kernel", "3",
        "--png", str(tmp_path / "tune.png")])

    assert result.exit_code == 0, result.output
    assert "noise sigma" in result.output and "recommended: --patch-size" in result.output
    assert (tmp_path / "tune.png").read_bytes().startswith(b"\x89PNG")


def test_build_with_auto_patch_size_records_the_choice(tiny_input, tmp_path):
    store = tmp_path / "auto.zarr"
    result = CliRunner().invoke(main, [
        "build", str(tiny_input), str(store), "--pipeline", "demo", "--patch-size", "auto",
        "--burst-length", "3", "--search-radius", "3", "--tile-size", "20", "--tile-stride",
        "12", "--bins", "501", "--holdout", "0", "--no-progress"])

    assert result.exit_code == 0, result.output
    attrs = zarr.open_group(str(store), mode="r").attrs
    assert attrs["parameters"]["patch_size"] == attrs["tuning"]["patch_size"]
    assert attrs["tuning"]["patch_size"] in (15, 25, 35, 45)
    assert f"tuning         p {attrs['tuning']['patch_size']} chosen automatically" in result.output


def test_build_with_auto_validation_hole_measures_the_noise_correlation(tiny_input, tmp_path):
    """Box noise of width 6 (correlation 0.83, 0.67, 0.5 at lags 1 to 3): the hole must cover
    three pixels each side; with --patch-size auto, tune's recommendation is used."""
    tiny = ["--pipeline", "demo", "--burst-length", "3", "--search-radius", "3", "--tile-size",
            "20", "--tile-stride", "12", "--bins", "501", "--holdout", "0.5", "--kernel", "6",
            "--validation-tiles", "2", "--no-progress"]
    runner = CliRunner()
    fixed = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "fixed.zarr"), *tiny,
                                 "--patch-size", "7", "--validation-hole", "auto"])
    auto = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "auto.zarr"), *tiny,
                                "--patch-size", "auto", "--validation-hole", "auto"])
    given = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "given.zarr"), *tiny,
                                 "--patch-size", "7"])

    assert [fixed.exit_code, auto.exit_code, given.exit_code] == [0, 0, 0], auto.output
    for name, result in (("fixed", fixed), ("auto", auto)):
        attrs = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r").attrs
        assert attrs["parameters"]["validation_hole"] == 7, name
        assert "0/3 validation hole: 7 x 7" in result.output
    assert zarr.open_group(str(tmp_path / "auto.zarr"), mode="r").attrs["tuning"][
        "validation_hole"] == 7
    assert zarr.open_group(str(tmp_path / "given.zarr"), mode="r").attrs["parameters"][
        "validation_hole"] == 3
    assert "validation hole" not in given.output
    info = runner.invoke(main, ["info", str(tmp_path / "auto.zarr")])
    assert "validation hole 7 recommended, 7 used" in info.output, info.output


def test_the_default_pipeline_adds_no_noise_and_a_named_one_says_it_does(tiny_input, tmp_path):
    tiny = ["--burst-length", "3", "--search-radius", "3", "--tile-size", "20", "--tile-stride",
            "12", "--bins", "501", "--holdout", "0", "--patch-size", "7", "--no-progress"]
    runner = CliRunner()

    default = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "a.zarr"), *tiny])
    named = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "b.zarr"),
                                 "--pipeline", "paper-synthetic", *tiny])

    assert default.exit_code == 0 and named.exit_code == 0, default.output + named.output
    assert "synthetic noise" not in default.output
    assert zarr.open_group(str(tmp_path / "a.zarr"), mode="r").attrs["parameters"]["noise"] == "none"
    assert "samples/clean" not in zarr.open_group(str(tmp_path / "a.zarr"), mode="r")
    assert ("adding synthetic noise (correlated-gaussian {'sigma': 20.0, 'kernel_size': 3}, "
            "from the paper-synthetic pipeline)") in named.output
