"""Choosing between stores by short trainings judged by the validation loss (pcst-train trial),
and the validation set's fingerprint that makes runs comparable (pcst-train compare)."""

import csv
import json
import re

import pytest
from click.testing import CliRunner

from pcst_prep.build import build

pytestmark = pytest.mark.slow

TRAINING = ["--steps", "4", "--batch-size", "4", "--validate-every", "2", "--no-progress"]


@pytest.fixture(scope="module")
def other_p_store(tmp_path_factory, tiny_input, tiny_config):
    """held_out_store's input and validation settings at another patch size."""
    path = tmp_path_factory.mktemp("trial") / "p5.zarr"
    build(tiny_input, path, tiny_config.replace(holdout=0.5, validation_patch_size=15,
                                                patch_size=5), progress=False)
    return path


@pytest.fixture(scope="module")
def other_validation_store(tmp_path_factory, tiny_input, tiny_config):
    """held_out_store's input with other validation targets (a smaller window)."""
    path = tmp_path_factory.mktemp("trial") / "window11.zarr"
    build(tiny_input, path, tiny_config.replace(holdout=0.5, validation_patch_size=11),
          progress=False)
    return path


def trained_loss(run_dir) -> float:
    """The lowest validation loss after step 0 (step 0 judges the common start)."""
    with open(run_dir / "log.csv") as f:
        return min(float(r["val_loss"]) for r in csv.DictReader(f)
                   if r["val_loss"] and int(r["step"]) > 0)


def trial_of(*stores, out, options=TRAINING):
    from pcst_train.cli import main

    return CliRunner().invoke(main, ["trial", *map(str, stores), "--out", str(out), *options])


def test_trial_trains_each_store_alike_and_chooses_the_lowest_validation_loss(
        held_out_store, other_p_store, tmp_path):
    from pcst_train.checkpoints import read_checkpoint

    out = tmp_path / "trial"
    result = trial_of(held_out_store, other_p_store, out=out)

    assert result.exit_code == 0, result.output
    runs = {7: out / "0_held_out", 5: out / "1_p5"}
    losses = {p: trained_loss(run) for p, run in runs.items()}
    assert losses[7] != losses[5]  # a real choice, not a tie
    chosen = min(losses, key=losses.get)
    report = json.loads((out / "trial.json").read_text())
    assert report["chosen"] == str(held_out_store if chosen == 7 else other_p_store)
    assert [r["patch_size"] for r in report["runs"]] == sorted(losses, key=losses.get)
    assert all(r["trained_step"] > 0 for r in report["runs"])
    assert f"chosen: {report['chosen']}" in result.output
    best = runs[chosen] / "best.pt"
    assert f"its model: {best} " in result.output and best.exists()
    assert (out / "trial.png").read_bytes().startswith(b"\x89PNG")
    # compare takes the trial's folder for its runs
    from pcst_train.cli import main
    compared = CliRunner().invoke(main, ["compare", str(out)])
    assert compared.exit_code == 0, compared.output
    assert all(str(run) in compared.output for run in runs.values())
    # alike: the same settings and, whatever the store's p, the same validation set
    states = [read_checkpoint(run / "final.pt") for run in runs.values()]
    assert states[0]["train_config"] == states[1]["train_config"]
    assert states[0]["train_config"]["steps"] == 4 and states[0]["train_config"]["lr"] == 3e-4
    assert states[0]["validation_set"] == states[1]["validation_set"]
    assert states[0]["validation_set"]["fingerprint"] == report["validation_set"]
    assert states[0]["validation_set"]["loss"] == "mae"  # the default, recorded

    # run again: the finished trainings are kept, not repeated; an interrupted one continues
    finished = (runs[7] / "final.pt").stat().st_mtime_ns
    (runs[5] / "final.pt").unlink()  # as if stopped after its last.pt
    again = trial_of(held_out_store, other_p_store, out=out)
    assert again.exit_code == 0, again.output
    assert (runs[7] / "final.pt").stat().st_mtime_ns == finished
    assert (runs[5] / "final.pt").exists()
    assert "(1 of 2 finished by an earlier run of this trial, not trained again)" in again.output
    assert "not trained again" not in result.output
    assert json.loads((out / "trial.json").read_text())["chosen"] == report["chosen"]
    # with other settings, the same directory is refused before anything trains, named
    before = (out / "trial.json").read_text()
    other = trial_of(held_out_store, other_p_store, out=out,
                     options=[*TRAINING[:-1], "--lr", "1e-4"])
    assert other.exit_code == 2
    assert "0_held_out" in other.output and "other settings (lr: 0.0003, not 0.0001)" in \
        other.output
    assert (out / "trial.json").read_text() == before


def test_trial_with_clean_targets_reuses_its_runs(held_out_store, other_p_store, tmp_path):
    options = [*TRAINING, "--clean-targets"]
    first = trial_of(held_out_store, other_p_store, out=tmp_path, options=options)
    again = trial_of(held_out_store, other_p_store, out=tmp_path, options=options)

    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output


def test_trial_refuses_a_run_directory_of_another_store(held_out_store, other_p_store,
                                                        tmp_path):
    import shutil

    a, b = tmp_path / "a" / "s.zarr", tmp_path / "b" / "s.zarr"  # same names: runs 0_s, 1_s
    shutil.copytree(held_out_store, a)
    shutil.copytree(other_p_store, b)
    out = tmp_path / "trial"
    assert trial_of(a, b, out=out).exit_code == 0

    swapped = trial_of(b, a, out=out)

    assert swapped.exit_code == 2
    assert "0_s" in swapped.output and f"holds a training on {a}, not {b}" in swapped.output


def test_a_trial_run_from_before_the_loss_options_is_taken_as_the_squared_errors(
        held_out_store, tmp_path):
    """A run that an earlier trial left before --loss existed trained and was judged with the
    squared error: a rerun with --loss mse reuses it, today's default refuses it, naming the
    setting."""
    import torch

    from pcst_train.checkpoints import read_checkpoint
    from pcst_train.config import TrainConfig
    from pcst_train.train import train
    from pcst_prep.errors import InputError
    from pcst_train.trial import _check_run

    config = TrainConfig(steps=2, batch_size=4, validate_every=2, loss="mse")
    train(held_out_store, tmp_path, config, progress=False)
    state = read_checkpoint(tmp_path / "final.pt")
    fingerprint = state["validation_set"]["fingerprint"]
    for name in ("loss", "validation_loss"):  # as a checkpoint written before the options
        del state["train_config"][name]
    torch.save(state, tmp_path / "final.pt")

    _check_run(tmp_path, held_out_store, config, fingerprint)  # accepted
    with pytest.raises(InputError, match=r"other settings \(loss, validation_loss: mse, mse"):
        _check_run(tmp_path, held_out_store, TrainConfig(steps=2, batch_size=4,
                                                         validate_every=2), fingerprint)


def test_trial_refuses_a_store_given_twice(held_out_store, tmp_path):
    result = trial_of(held_out_store, f"{held_out_store}/", out=tmp_path / "trial")

    assert result.exit_code == 2 and "is given twice" in result.output
    assert not (tmp_path / "trial").exists()


def test_trial_refuses_stores_whose_validation_sets_differ(held_out_store,
                                                           other_validation_store, tmp_path):
    result = trial_of(held_out_store, other_validation_store, out=tmp_path / "trial")

    assert result.exit_code == 2
    assert "window11.zarr" in result.output and "validation set differs" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "trial").exists()  # nothing trained, nothing written


def test_trial_refuses_a_store_without_a_validation_set(held_out_store, tiny_store, tmp_path):
    result = trial_of(held_out_store, tiny_store, out=tmp_path / "trial")

    assert result.exit_code == 2
    assert "tiny.zarr" in result.output and "no validation set" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "trial").exists()


def test_compare_warns_when_runs_were_validated_on_different_sets(
        held_out_store, other_p_store, other_validation_store, tmp_path):
    from pcst_train.cli import main
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    for name, store in (("a", held_out_store), ("b", other_p_store),
                        ("c", other_validation_store)):
        train(store, tmp_path / name, TrainConfig(steps=2, batch_size=4, validate_every=2),
              progress=False)

    same = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    mixed = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "c")])

    assert same.exit_code == 0 and mixed.exit_code == 0
    assert "warning" not in same.output and "validation set" not in same.output
    assert "warning: these runs were validated on different held-out sets" in mixed.output
    header, first, second = mixed.output.splitlines()[:3]
    assert header.rstrip().endswith("validation set") and "val. loss" not in header
    assert first.split()[-1] != second.split()[-1]  # each run names its set

    # judged with another error on the same set: another estimator, named and warned about
    train(held_out_store, tmp_path / "d", TrainConfig(steps=2, batch_size=4, validate_every=2,
                                                      validation_loss="mse"), progress=False)
    other_loss = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "d")])
    assert other_loss.exit_code == 0, other_loss.output
    assert "--validation-loss" in other_loss.output.split("warning:")[1]
    header, *rows = other_loss.output.splitlines()[:3]
    assert "val. loss" in header
    assert sorted(row.split()[-2] for row in rows) == ["mae", "mse"]

    # a run from before fingerprints were recorded: not known to differ, but not checked
    import shutil

    import torch

    from pcst_train.checkpoints import read_checkpoint

    shutil.copytree(tmp_path / "c", tmp_path / "old")
    state = read_checkpoint(tmp_path / "old" / "final.pt")
    del state["validation_set"]
    torch.save(state, tmp_path / "old" / "final.pt")
    old = CliRunner().invoke(main, ["compare", str(tmp_path / "old"), str(tmp_path / "a")])
    assert old.exit_code == 0, old.output
    assert "warning" not in old.output
    assert "note: 1 run(s) predate validation-set fingerprints" in old.output


def test_train_and_compare_judge_runs_against_their_starting_model(held_out_store, tmp_path):
    """Without clean frames the user learns from the held-out tiles whether training beat the
    model it started from: compare shows step 0's loss and the change; a run whose training
    only made it worse (an absurd learning rate) is named, its best.pt being the start."""
    from pcst_train.cli import main

    runner = CliRunner()
    ruined = runner.invoke(main, ["train", str(held_out_store), "--out", str(tmp_path / "ruined"),
                                  "--lr", "1.0", *TRAINING])
    assert ruined.exit_code == 0, ruined.output
    assert "best.pt is that model unchanged" in ruined.output
    adapted = runner.invoke(main, ["train", str(held_out_store), "--out",
                                   str(tmp_path / "adapted"), "--lr", "1e-4", *TRAINING])
    assert adapted.exit_code == 0, adapted.output

    compared = runner.invoke(main, ["compare", str(tmp_path / "ruined"),
                                    str(tmp_path / "adapted")])
    assert compared.exit_code == 0, compared.output
    lines = compared.output.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    start, change = header.index("start val loss"), header.index("trained vs start")
    for name in ("ruined", "adapted"):
        with open(tmp_path / name / "log.csv") as f:
            losses = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(f)
                      if r["val_loss"]}
        row = next(line.split() for line in lines[1:3] if line.startswith(str(tmp_path / name)))
        trained = min(v for step, v in losses.items() if step > 0)
        assert float(row[start]) == pytest.approx(losses[0], rel=1e-5)
        assert float(row[change].rstrip("%")) == pytest.approx(100 * (trained / losses[0] - 1),
                                                               abs=0.06)
    ruined_losses = [float(r["val_loss"]) for r in csv.DictReader(
        open(tmp_path / "ruined" / "log.csv")) if r["val_loss"]]
    assert min(ruined_losses[1:]) > ruined_losses[0]  # the premise: training only harmed
    ruined_row = next(line.split() for line in lines[1:3]
                      if line.startswith(str(tmp_path / "ruined")))
    assert float(ruined_row[change].rstrip("%")) > 0  # what training lost, shown
    assert f"beat the starting model in {tmp_path / 'ruined'}:" in compared.output
    assert str(tmp_path / "adapted") not in compared.output.split("note:")[-1]
