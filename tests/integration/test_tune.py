"""Choosing p from the noisy input alone: pcst-prep tune and --patch-size auto."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from pcst_prep import store as zstore
from pcst_prep.cli import main
from pcst_prep.config import BuildConfig
from pcst_prep.tune import format_report, tune, weak_evidence

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


def test_tune_recommends_the_larger_ring_for_strong_noise_only(tiny_input, report):
    weaker = tune(tiny_input, NOISY.replace(noise_params={"sigma": 10.0, "kernel_size": 3}),
                  candidates=(7, 15, 25), n_bursts=2)

    assert weaker.noise_sigma == pytest.approx(10.0, rel=0.15)
    assert (report.validation_patch_size, weaker.validation_patch_size) == (25, 15)
    assert "--validation-patch-size 25" in format_report(report)


def test_tune_measures_on_bursts_centred_on_their_middle_frame(tiny_input, report):
    """A replicating build also centers bursts on their edge frames; tune samples the
    middle-centred ones, the bursts a plain build has: the same evidence either way."""
    replicated = tune(tiny_input, NOISY.replace(replicate=True), candidates=(7, 15, 25),
                      n_bursts=2)

    assert replicated == report


def test_tune_chooses_the_smallest_p_that_does_not_fit_the_noise(report):
    fits = [c.noise_fit for c in report.candidates]

    assert [c.patch_size for c in report.candidates] == [7, 15, 25]
    assert min(fits[0], fits[1]) > fits[2] == 0.0  # smaller patches copy more of the noise
    chosen = next(c for c in report.candidates if c.patch_size == report.patch_size)
    assert chosen.noise_fit <= report.fit_limit
    assert all(c.noise_fit > report.fit_limit for c in report.candidates
               if c.patch_size < report.patch_size)


def test_the_report_says_when_its_evidence_is_weak_and_how_to_settle_it(report):
    import dataclasses

    def with_fits(patch_size, fits):
        candidates = [dataclasses.replace(c, noise_fit=f) for c, f in zip(report.candidates,
                                                                           fits)]
        return format_report(dataclasses.replace(report, patch_size=patch_size,
                                                 candidates=candidates))

    fallback = with_fits(25, [0.1, 0.05, 0.0])
    uneven = with_fits(7, [0.01, 0.03, 0.0])
    settled = with_fits(15, [0.1, 0.01, 0.0])

    assert "no smaller p came under the limit" in fallback
    assert "--patch-size 7 (same input and options, and --validation-from STORE" in fallback
    assert "pcst-train trial STORE STORE_P7" in fallback
    assert "the noise fit does not fall as p grows" in uneven
    assert "pcst-train trial STORE STORE_P25" in uneven  # the other end
    assert "note:" not in settled and "recommended: --patch-size 15" in settled
    assert "the noise is weak" not in settled
    assert "note: the noise is weak (sigma ~1.6 of 255)" in format_report(
        dataclasses.replace(report, noise_sigma=1.6))
    # the largest p is the noise fit's reference (0 by definition), and says so
    assert "recommended: --patch-size 25 (the reference p: no smaller p's noise fit" in fallback
    assert "recommended: --patch-size 15 (the smallest p whose noise fit" in settled
    assert [line.split()[3] for line in settled.splitlines() if line.startswith("  25 ")] == [
        "reference"]


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
    # the build and its summary say when the evidence is weak, and what to compare p with
    weak = weak_evidence(attrs["tuning"]["patch_size"],
                         {c["patch_size"]: c["noise_fit"] for c in attrs["tuning"]["candidates"]})
    assert result.output.count("by short trainings (pcst-train trial)") == 2 * (weak is not None)
    if weak is not None:
        assert f"compare with a store at p {weak[0]} by short trainings" in result.output


def test_build_and_info_say_when_p_is_only_the_largest_candidates_default(tiny_input, tmp_path,
                                                                         monkeypatch):
    import functools

    import pcst_prep.build
    from pcst_prep.tune import tune

    # no noise fit is at most 0 on this input but the largest p's (0 by definition)
    monkeypatch.setattr(pcst_prep.build, "tune", functools.partial(tune, fit_limit=0.0))
    store = tmp_path / "auto.zarr"
    result = CliRunner().invoke(main, [
        "build", str(tiny_input), str(store), "--pipeline", "demo", "--patch-size", "auto",
        "--burst-length", "3", "--search-radius", "3", "--tile-size", "20", "--tile-stride",
        "12", "--bins", "501", "--holdout", "0", "--no-progress"])
    info = CliRunner().invoke(main, ["info", str(store)])

    assert result.exit_code == 0 and info.exit_code == 0, result.output + info.output
    assert zarr.open_group(str(store), mode="r").attrs["tuning"]["patch_size"] == 45
    assert ("0/3 tune: patch size 45 (noise sigma" in result.output
            and "p 45 is only the largest candidate's default: compare with a store at p 15 by "
                "short trainings (pcst-train trial)" in result.output)
    assert "p 45 is only the largest candidate's default" in info.output
    assert "this store has none; build it with --holdout" in info.output  # --holdout 0


def test_info_gives_the_commands_that_settle_weak_evidence_and_they_run(tiny_input, tmp_path,
                                                                       monkeypatch):
    import functools
    import shlex

    import pcst_prep.build
    from pcst_train.cli import main as train_main

    monkeypatch.setattr(pcst_prep.build, "tune", functools.partial(tune, fit_limit=0.0))
    options = ["--burst-length", "3", "--search-radius", "3", "--tile-size", "20",
               "--tile-stride", "12", "--bins", "501", "--holdout", "0.5", "--no-progress"]
    first = tmp_path / "auto.zarr"
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(tiny_input), str(first), "--pipeline", "demo",
                                  "--patch-size", "auto", *options])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "to settle it (give the build" in line)
    build, trial = (shlex.split(line) for line in lines[at + 1:at + 3])
    assert build[:2] == ["pcst-prep", "build"]
    assert trial[:3] == ["pcst-train", "trial", str(first)]
    second = runner.invoke(main, build[1:] + options)  # as told, with the first's options
    assert second.exit_code == 0, second.output
    assert f"copied from {first}" in second.output
    chosen = runner.invoke(train_main, trial[1:] + ["--steps", "2", "--batch-size", "4",
                                                    "--validate-every", "2", "--no-progress"])
    assert chosen.exit_code == 0, chosen.output  # the trial accepts: one validation set
    assert str(tmp_path / "auto_p15.zarr") in chosen.output


def test_settle_commands_name_a_second_store_beside_the_first():
    from pcst_prep.tune import settle_commands

    build, trial = settle_commands("runs/my clip.zarr/", "/data/my clip", "real", 15)
    assert build == ("pcst-prep build '/data/my clip' 'runs/my clip_p15.zarr' --pipeline real "
                     "--patch-size 15 --validation-from 'runs/my clip.zarr'")
    assert trial == ("pcst-train trial 'runs/my clip.zarr' 'runs/my clip_p15.zarr' --out "
                     "'runs/my clip_trial'")
    build, trial = settle_commands("s3://b/x.zarr", None, None, 45)
    assert build == ("pcst-prep build INPUT_DIR s3://b/x_p45.zarr --patch-size 45 "
                     "--validation-from s3://b/x.zarr")
    assert trial.endswith("--out x_trial")  # a local folder, not a URL
    assert settle_commands(".", "in", None, 15)[1].startswith(f"pcst-train trial {Path.cwd()}")
    # a pipeline of the user's own: not a preset name, which the build would refuse
    build, _ = settle_commands("x.zarr", "in", "my-camera", 15)
    assert " --pipeline PIPELINE.toml --patch-size 15 " in build


def test_weak_evidence_names_the_candidate_to_compare_with():
    from pcst_prep.tune import weak_evidence

    falling = {15: 0.13, 25: 0.08, 35: 0.05, 45: 0.0}
    assert weak_evidence(45, falling) == (15, "default")  # only the largest came under
    assert weak_evidence(25, {15: 0.13, 25: 0.0}) == (15, "default")
    assert weak_evidence(35, {**falling, 35: 0.01}) is None  # fits fall as p grows: settled
    assert weak_evidence(15, {15: -0.001, 25: 0.02, 35: 0.013, 45: 0.0}) == (45, "not monotone")
    assert weak_evidence(35, {15: 0.02, 25: 0.03, 35: 0.005, 45: 0.0}) == (45, "not monotone")
    assert weak_evidence(15, {15: 0.0}) is None  # a single candidate: nothing to compare


# A tiny build holding half its input out, under box noise of width 6 (lag-3 correlation 0.5)
HELD_OUT_BOX6 = ["--pipeline", "demo", "--burst-length", "3", "--search-radius", "3",
                 "--tile-size", "20", "--tile-stride", "12", "--bins", "501", "--holdout", "0.5",
                 "--kernel", "6", "--validation-tiles", "2", "--no-progress"]


def test_build_with_auto_validation_hole_measures_the_noise_correlation(tiny_input, tmp_path):
    """Box noise of width 6 (correlation 0.83, 0.67, 0.5 at lags 1 to 3): the hole must cover
    three pixels each side; with --patch-size auto, tune's recommendation is used."""
    tiny = HELD_OUT_BOX6
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
    ring = zarr.open_group(str(tmp_path / "auto.zarr"), mode="r").attrs["tuning"][
        "validation_patch_size"]
    assert f"validation ring {ring} recommended, 15 used" in info.output, info.output


def test_build_with_auto_validation_ring_grows_it_with_the_noise(tiny_input, tmp_path):
    """--validation-patch-size auto: the ring of 25 under strong noise, of 15 under weak, from
    the noise sigma that tune would measure (a fixed-p build measures it itself); the store
    records the ring used, and its held-out tiles are the ring's."""
    options = [*HELD_OUT_BOX6, "--kernel", "1", "--patch-size", "7",
               "--validation-patch-size", "auto"]
    runner = CliRunner()
    targets = {}
    for sigma, ring in ((30, 25), (5, 15)):
        store = tmp_path / f"s{sigma}.zarr"
        result = runner.invoke(main, ["build", str(tiny_input), str(store), *options,
                                      "--sigma", str(sigma)])

        assert result.exit_code == 0, result.output
        assert f"0/3 validation ring: {ring} x {ring} (noise sigma ~" in result.output
        group = zarr.open_group(str(store), mode="r")
        assert group.attrs["parameters"]["validation_patch_size"] == ring
        targets[sigma] = zstore.read_validation(group)[1]
    fixed = tmp_path / "s30_ring15.zarr"
    assert runner.invoke(main, ["build", str(tiny_input), str(fixed), *options[:-1], "15",
                                "--sigma", "30"]).exit_code == 0
    same_noise = zstore.read_validation(zarr.open_group(str(fixed), mode="r"))[1]
    assert same_noise.shape == targets[30].shape and not np.array_equal(same_noise, targets[30])
    # other validation targets take auto as their p of 15; no held-out bursts, no ring at all
    for name, extra in (("pc", ["--validation-targets", "patch-craft"]),
                        ("none", ["--holdout", "0"])):
        result = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / f"{name}.zarr"),
                                      *options, "--sigma", "30", *extra])
        assert result.exit_code == 0, result.output
        assert "validation ring" not in result.output
        assert zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r").attrs["parameters"][
            "validation_patch_size"] == 15


def test_a_store_copying_validation_tiles_takes_their_hole_without_measuring(
        tiny_input, tmp_path, monkeypatch):
    """--validation-hole auto with --validation-from: the hole is the donor's (its validation
    set, hole included; here 5, where measuring would give 7), not measured again; each copied
    burst records where its tiles came from."""
    tiny = HELD_OUT_BOX6
    runner = CliRunner()
    donor = runner.invoke(main, ["build", str(tiny_input), str(tmp_path / "p7.zarr"), *tiny,
                                 "--patch-size", "7", "--validation-hole", "5",
                                 "--validation-patch-size", "17"])
    assert donor.exit_code == 0, donor.output

    def measure(*args, **kwargs):
        raise AssertionError("the hole was measured again")

    monkeypatch.setattr("pcst_prep.build.estimate_noise_correlation", measure)
    monkeypatch.setattr("pcst_prep.build.estimate_noise", measure)
    monkeypatch.chdir(tmp_path)  # a relative --validation-from is recorded as a location
    copy = runner.invoke(main, ["build", str(tiny_input), "p5.zarr", *tiny, "--patch-size", "5",
                                "--validation-hole", "auto", "--validation-patch-size", "auto",
                                "--validation-from", "p7.zarr"])

    assert copy.exit_code == 0, copy.output
    assert ("0/3 validation ring: 17 x 17, hole 5 x 5 (those of the validation tiles copied "
            "from p7.zarr)") in copy.output
    group = zarr.open_group(str(tmp_path / "p5.zarr"), mode="r")
    assert group.attrs["parameters"]["validation_hole"] == 5
    assert group.attrs["parameters"]["validation_patch_size"] == 17
    held_out = zarr.open_group(str(tmp_path / "p7.zarr"), mode="r")["validation/bursts"].shape[0]
    assert zstore.validation_sources(group) == {str(tmp_path / "p7.zarr"): held_out}
    info = runner.invoke(main, ["info", "p5.zarr"])
    assert f"those of {held_out} held-out burst(s) copied from {tmp_path / 'p7.zarr'}" \
        in info.output, info.output
    assert "copied from" not in runner.invoke(main, ["info", "p7.zarr"]).output


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


def test_a_fixed_p_build_measures_the_noise_correlation_at_tunes_reference_p(tmp_path,
                                                                            demo_frames):
    """Frames 40 pixels high: tune's largest candidate is 35, and a build with a fixed p and
    --validation-hole auto must measure the correlation there too, so that the stores of a
    trial (one at tune's p, one at another) get the same hole and validation targets."""
    from helpers import write_frames
    from pcst_prep.plan import plan_bursts
    from pcst_prep.tune import estimate_noise, estimate_noise_correlation, reference_size

    write_frames(tmp_path / "clip", demo_frames[:5, 60:100, 40:140])
    config = NOISY.replace(noise_params={"sigma": 20.0, "kernel_size": 6}, search_radius=3,
                           patch_size=15)
    plan = plan_bursts(tmp_path, config)

    assert reference_size(plan.bursts) == 35
    report = tune(tmp_path, config, n_bursts=3)
    assert [c.patch_size for c in report.candidates] == [15, 25, 35]
    assert estimate_noise_correlation(plan.bursts, config) == report.noise_correlation
    assert estimate_noise(plan.bursts, config) == (report.noise_sigma, report.noise_correlation)


def test_a_resumed_auto_build_takes_the_recorded_choice_instead_of_tuning_again(
        tiny_input, tmp_path, monkeypatch, capsys):
    """tune reads only the input and the settings: a build of the same input and settings,
    resumed (or run again), takes the report its store recorded and ends with the same store;
    another setting, or --overwrite, tunes again."""
    import pcst_prep.build as build_module
    from pcst_prep.build import build
    from helpers import assert_same_store

    config = NOISY.replace(patch_size="auto", search_radius=3)
    store, reference = tmp_path / "resumed.zarr", tmp_path / "straight.zarr"
    build(tiny_input, reference, config, progress=False)
    build(tiny_input, store, config, progress=False)
    group = zarr.open_group(str(store), mode="r+")
    group["bursts/scored"][1:] = False  # as if interrupted in stage 1
    for name in ("tiles", "sources", "bursts/tiles"):
        del group[name]
    group.attrs.update({"status": "building"})
    del group.attrs["filter"]
    capsys.readouterr()

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again")

    monkeypatch.setattr(build_module, "tune", no_tuning)
    summary = build(tiny_input, store, config, progress=False)
    assert summary.resumed
    told = capsys.readouterr().err
    assert "as this store's build recorded it, not tuned again" in told
    assert "1/3 match and score bursts (1 of " in told  # the burst scored before the stop
    assert_same_store(reference, store)
    # another setting, --overwrite, or no store yet: tune runs
    for path, other, overwrite in ((store, config.replace(tile_stride=10), False),
                                   (store, config, True), (tmp_path / "new.zarr", config, False)):
        with pytest.raises(AssertionError, match="tuned again"):
            build(tiny_input, path, other, overwrite=overwrite, progress=False)
