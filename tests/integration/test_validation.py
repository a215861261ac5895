"""Clean-free validation: held-out bursts in the store, the validation loss in training."""

from dataclasses import replace

import numpy as np
import pytest
import zarr

from pcst_prep import store as zstore
from pcst_prep.bursts import Burst
from pcst_prep.errors import InputError
from pcst_prep.matching import ring_match, ring_target
from pcst_prep.plan import plan_bursts, split_holdout
from pcst_prep.stages import load_burst

pytestmark = pytest.mark.slow


def bursts(starts, length=3, source=0):
    return [Burst(tuple(range(s, s + length)), 1, index=i, source=source)
            for i, s in enumerate(starts)]


def test_one_sequence_holds_out_its_last_bursts_and_drops_those_sharing_frames():
    training, held = split_holdout(bursts([0, 2, 4, 6, 8]), n_sources=1, share=0.2)

    assert [b.frame_indices for b in held] == [(8, 9, 10)]
    assert [b.frame_indices[0] for b in training] == [0, 2, 4]  # (6, 7, 8) shares frame 8
    assert [b.index for b in training] == [0, 1, 2] and held[0].index == 3


def test_several_sequences_hold_out_whole_sequences():
    everything = bursts([0, 3], source=0) + bursts([0, 3], source=1) + bursts([0], source=2)

    training, held = split_holdout(everything, n_sources=3, share=0.34)

    assert {b.source for b in held} == {2} and {b.source for b in training} == {0, 1}


def test_holding_out_is_refused_when_nothing_would_be_left_to_train_on():
    with pytest.raises(InputError, match="too few bursts"):
        split_holdout(bursts([0, 1]), n_sources=1, share=0.5)


def test_held_out_tiles_are_the_center_frame_of_bursts_never_trained_on(held_out_store,
                                                                       tiny_input, tiny_config):
    config = tiny_config.replace(holdout=0.5, validation_patch_size=15)
    plan = plan_bursts(tiny_input, config)
    group = zarr.open_group(str(held_out_store), mode="r")
    inputs, targets, clean = zstore.read_validation(group)

    assert {b.source for b in plan.validation} == {1}
    assert {b.source for b in plan.bursts} == {0}
    assert set(group["bursts/source"][:]) == {0}
    burst = plan.validation[0]
    noisy, clean_frames = load_burst(burst, config)
    np.testing.assert_array_equal(inputs[0], noisy[burst.center, :20, :20])
    np.testing.assert_array_equal(clean[0], clean_frames[burst.center, :20, :20])
    # the targets are noisy versions of the same content, not copies of the input: by
    # default ring targets, one per tile, each pixel copied where the ring around it matches
    assert config.validation_targets == "ring" and config.validation_hole == 3
    assert targets.shape == (len(inputs), 1, 20, 20, 3)
    match = ring_match(noisy, burst.center, 15, 3, config.search_radius)
    np.testing.assert_array_equal(targets[0, 0], ring_target(noisy, match)[:20, :20])
    error_target = np.mean((targets - clean[:, None]) ** 2)
    error_input = np.mean((inputs - clean) ** 2)
    assert 0.5 * error_input < error_target < 3 * error_input
    assert not np.array_equal(targets[:, 0], inputs)
    assert zstore.description(group)["counts"]["validation_tiles"] == len(inputs)


def test_training_reports_the_validation_loss_and_keeps_the_best(held_out_store, tmp_path):
    import csv

    from pcst_train.config import TrainConfig
    from pcst_train.checkpoints import read_checkpoint
    from pcst_train.train import train

    result = train(held_out_store, tmp_path, TrainConfig(steps=12, batch_size=4,
                                                          validate_every=4), progress=False)

    rows = [r for r in csv.DictReader(open(tmp_path / "log.csv")) if r["val_loss"]]
    assert [int(r["step"]) for r in rows] == [0, 4, 8, 12]
    losses = [float(r["val_loss"]) for r in rows]
    assert result["best_loss"] == pytest.approx(min(losses), rel=1e-6)
    assert result["best_step"] == int(rows[int(np.argmin(losses))]["step"])
    best = read_checkpoint(tmp_path / "best.pt")
    assert best["step"] == result["best_step"]
    assert best["validation"]["val_loss"] == pytest.approx(min(losses))
    assert all(r["val_psnr"] for r in rows)  # synthetic noise: the PSNR is measured too
    assert (tmp_path / "crops.png").read_bytes().startswith(b"\x89PNG")


def test_the_validation_filter_leaves_out_the_pixels_whose_target_is_evidently_wrong(
        held_out_store, monkeypatch):
    """The validation loss over the pixels that the pixel filter keeps (NumPy reference: a
    masked mean over the store's tiles and targets); a wrong patch pasted into the targets
    moves the unfiltered loss and hardly the filtered one; the filter is in the set's
    fingerprint (runs judged with another filter do not compare), and 0 is the loss as it
    was before the filter."""
    import hashlib

    import torch

    from pcst_train.losses import pixel_filter_mask
    from pcst_train.train import HeldOut, validation_fingerprint

    inputs, targets, _ = zstore.read_validation(zarr.open_group(str(held_out_store), mode="r"))
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    torch.nn.init.dirac_(model.weight)
    torch.nn.init.zeros_(model.bias)
    with torch.no_grad():
        model.weight.mul_(0.8)  # a model that is not the identity
    plain, filtered = (HeldOut(held_out_store, pixel_filter=f, loss="mse") for f in (0.0, 1.2))

    # the reference: MSE(model(y), target - bias) over the kept pixels
    bias = np.mean(targets, dtype=np.float64) - np.mean(inputs, dtype=np.float64)
    with torch.no_grad():
        out = model(torch.from_numpy(np.moveaxis(inputs, -1, 1))).numpy()
    t = np.moveaxis(targets - np.float32(bias), -1, 2)  # [n, K, C, S, S]
    keep = pixel_filter_mask(torch.from_numpy(np.repeat(np.moveaxis(inputs, -1, 1),
                                                        t.shape[1], 0)),
                             torch.from_numpy(t.reshape(-1, *t.shape[2:])), 1.2).numpy()
    keep = keep.reshape(t.shape[0], t.shape[1], 1, *t.shape[3:])
    squared = (out[:, None] - t) ** 2
    expected = (squared * keep).sum() / (keep.sum() * t.shape[2])
    assert 0.5 < keep.mean() < 1.0
    assert filtered.kept == pytest.approx(keep.mean())
    assert filtered.evaluate(model, "cpu")["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert plain.evaluate(model, "cpu")["val_loss"] == pytest.approx(squared.mean(), rel=1e-5)
    absolute = np.abs(out[:, None] - t)  # the default loss: the mean absolute error
    assert HeldOut(held_out_store, pixel_filter=1.2).evaluate(model, "cpu")["val_loss"] \
        == pytest.approx((absolute * keep).sum() / (keep.sum() * t.shape[2]), rel=1e-5)
    assert HeldOut(held_out_store, pixel_filter=0.0).evaluate(model, "cpu")["val_loss"] \
        == pytest.approx(absolute.mean(), rel=1e-5)

    digest = hashlib.sha256()  # the digest of runs made before the filter, unchanged
    for array in (inputs, targets):
        digest.update(repr(array.shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    assert plain.fingerprint == validation_fingerprint(inputs, targets) == digest.hexdigest()[:16]
    assert filtered.fingerprint != plain.fingerprint
    assert filtered.fingerprint == validation_fingerprint(inputs, targets, 1.2)
    assert HeldOut(held_out_store, loss="mse").fingerprint \
        == validation_fingerprint(inputs, targets, 2.0)
    judged_by_mae = HeldOut(held_out_store).fingerprint  # the default: another estimator
    assert judged_by_mae == validation_fingerprint(inputs, targets, 2.0, "mae")
    assert judged_by_mae not in (filtered.fingerprint, plain.fingerprint,
                                 validation_fingerprint(inputs, targets, 2.0))

    # a wrong patch in the first tile's target (of zero mean, so that the targets' mean
    # offset stays): the filter (pcst-train's 2) leaves it out
    before = {f: HeldOut(held_out_store, pixel_filter=f, loss="mse")
              .evaluate(model, "cpu")["val_loss"] for f in (0.0, 2.0)}
    wrong = targets.copy()
    wrong[0, 0, :10, :10] += np.where(np.indices((10, 10)).sum(0) % 2, 1.0, -1.0)[..., None]
    monkeypatch.setattr(zstore, "read_validation", lambda group: (inputs, wrong, None))
    moved = {f: HeldOut(held_out_store, pixel_filter=f, loss="mse")
             .evaluate(model, "cpu")["val_loss"] - before[f] for f in (0.0, 2.0)}
    assert moved[0.0] > 0.2 * before[0.0]
    assert abs(moved[2.0]) < 0.1 * moved[0.0]


def test_a_run_is_not_resumed_with_another_validation_filter(held_out_store, tmp_path):
    """Its log and best.pt stay one estimator: resuming with another --validation-filter
    (here through the Python API, which the CLI's own check does not guard) is refused."""
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    config = TrainConfig(steps=4, batch_size=4, validate_every=2)
    train(held_out_store, tmp_path, config, progress=False)
    with pytest.raises(InputError, match="another validation set or --validation-filter"):
        train(held_out_store, tmp_path, TrainConfig(steps=8, batch_size=4, validate_every=2,
                                                    validation_filter=0.0),
              resume="auto", progress=False)
    result = train(held_out_store, tmp_path, TrainConfig(steps=8, batch_size=4,
                                                          validate_every=2),
                   resume="auto", progress=False)
    assert result["steps"] == 8


def test_training_stops_early_when_the_validation_loss_stops_improving(held_out_store,
                                                                       tmp_path):
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    # a learning rate this high makes the pre-trained model worse at once
    result = train(held_out_store, tmp_path, TrainConfig(steps=40, batch_size=4, lr=0.05,
                                                          validate_every=2, patience=2),
                   progress=False)

    assert result["stopped_early"] and result["steps"] < 40
    assert result["best_step"] == 0

    # resumed as it was, the run has nothing left to do: refused, its final.pt untouched
    final = (tmp_path / "final.pt").read_bytes()
    config = TrainConfig(steps=40, batch_size=4, lr=0.05, validate_every=2, patience=2)
    with pytest.raises(InputError, match="stopped early at step .* resume with a larger "
                       "--patience"):
        train(held_out_store, tmp_path, config, resume="auto", progress=False)
    assert (tmp_path / "final.pt").read_bytes() == final
    # a larger patience trains on
    more = train(held_out_store, tmp_path, replace(config, patience=4), resume="auto",
                 progress=False)
    assert more["steps"] > result["steps"]


def test_a_run_whose_steps_are_done_is_not_resumed(held_out_store, tmp_path):
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    config = TrainConfig(steps=4, batch_size=4, validate_every=2)
    train(held_out_store, tmp_path, config, progress=False)
    with pytest.raises(InputError, match="all its 4 steps are done.* more --epochs or "
                       "--steps"):
        train(held_out_store, tmp_path, config, resume="auto", progress=False)
    assert train(held_out_store, tmp_path, replace(config, steps=6), resume="auto",
                 progress=False)["steps"] == 6
    # interrupted after its last last.pt but before its final.pt: the resume writes final.pt
    (tmp_path / "final.pt").unlink()
    assert train(held_out_store, tmp_path, replace(config, steps=6), resume="auto",
                 progress=False)["steps"] == 6
    assert (tmp_path / "final.pt").exists()


def test_compare_ranks_runs_by_their_validation_loss(held_out_store, tmp_path):
    from click.testing import CliRunner

    from pcst_train.cli import main
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    for name, lr in (("gentle", 1e-4), ("harsh", 0.05)):
        train(held_out_store, tmp_path / name, TrainConfig(steps=4, batch_size=4, lr=lr,
                                                            validate_every=2), progress=False)

    result = CliRunner().invoke(main, ["compare", str(tmp_path / "harsh"),
                                       str(tmp_path / "gentle")])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["run", "p", "steps"] and "PSNR at best" in lines[0]
    assert lines[1].startswith(str(tmp_path / "gentle"))  # the lower loss first
    assert lines[2].startswith(str(tmp_path / "harsh"))
    assert lines[1].split()[1] == "7"  # the store's patch size


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path):
    from click.testing import CliRunner

    from pcst_train.cli import main

    result = CliRunner().invoke(main, ["compare", str(tmp_path)])

    assert result.exit_code == 2
    assert "not a run directory" in result.output


def test_resume_applies_a_longer_run_and_says_so(held_out_store, tmp_path):
    from click.testing import CliRunner

    from pcst_train.cli import main

    run = str(tmp_path / "run")
    runner = CliRunner()
    first = runner.invoke(main, [str(held_out_store), "--out", run, "--steps", "4",
                                 "--batch-size", "4", "--lr", "0.001"])
    assert first.exit_code == 0, first.output

    longer = runner.invoke(main, [str(held_out_store), "--out", run, "--resume", "--steps", "6"])

    assert longer.exit_code == 0, longer.output
    assert "resuming with --steps 6 (was 4)" in longer.output
    assert "trained 6 steps" in longer.output


def test_validation_tiles_are_capped_evenly_over_the_frame(tiny_config):
    from pcst_prep.stages import validation_tiles

    every = validation_tiles(200, 300, tiny_config.replace(tile_size=50))
    assert every == [(r, c) for r in (0, 50, 100, 150) for c in range(0, 300, 50)]
    capped = validation_tiles(200, 300, tiny_config.replace(tile_size=50, validation_tiles=5))
    assert capped == [every[i] for i in (0, 6, 12, 17, 23)]
    assert validation_tiles(200, 300, tiny_config.replace(tile_size=50,
                                                           validation_tiles=24)) == every


def test_patch_craft_validation_targets_keep_k_offsets(tmp_path, tiny_input, tiny_config):
    from pcst_prep.build import build
    from pcst_prep.targets import target_kind

    config = tiny_config.replace(holdout=0.5, validation_targets="patch-craft",
                                 validation_patch_size=9)
    build(tiny_input, tmp_path / "pc.zarr", config, progress=False)
    inputs, targets, clean = zstore.read_validation(zarr.open_group(str(tmp_path / "pc.zarr"),
                                                                    mode="r"))
    burst = plan_bursts(tiny_input, config).validation[0]
    noisy, _ = load_burst(burst, config)
    kind, vconfig = target_kind("patch-craft"), config.replace(patch_size=9)
    prepared = kind.prepare(noisy, burst.center, vconfig)
    nnf = kind.match(noisy, burst.center, vconfig)
    crafted = [kind.craft(prepared, nnf, vconfig, o, slice(0, 20), slice(0, 20))
               for o in kind.offsets(vconfig)]

    assert targets.shape == (len(inputs), config.targets_per_tile, 20, 20, 3)
    # each of the tile's K targets is the patch-craft target of one offset, K distinct offsets
    chosen = [next(i for i, c in enumerate(crafted) if np.array_equal(c, t)) for t in targets[0]]
    assert len(set(chosen)) == config.targets_per_tile
    assert not np.array_equal(targets[:, 0], inputs)


def test_a_store_at_another_p_copies_the_validation_tiles_it_would_compute(
        held_out_store, tiny_input, tiny_config, tmp_path, capsys):
    from pcst_prep.build import build

    config = tiny_config.replace(holdout=0.5, validation_patch_size=15, patch_size=5)
    build(tiny_input, tmp_path / "computed.zarr", config, progress=False)
    capsys.readouterr()
    build(tiny_input, tmp_path / "copied.zarr", config, progress=False,
          validation_from=held_out_store)  # held_out_store: the same build at p 7
    held_out = len(zstore.validated_bursts(zarr.open_group(str(held_out_store), mode="r")))
    err = capsys.readouterr().err
    assert f"validation tiles of {held_out} copied from {held_out_store}" in err
    assert "validation targets" not in err  # none computed
    computed, copied = (zstore.read_validation(zarr.open_group(str(tmp_path / name), mode="r"))
                        for name in ("computed.zarr", "copied.zarr"))
    assert computed[2] is not None and len(computed[0]) > 0
    for mine, theirs in zip(computed, copied):
        np.testing.assert_array_equal(mine, theirs)

    with pytest.raises(InputError, match=r"seed \(stored 3, now 4\); only the patch size"):
        build(tiny_input, tmp_path / "other.zarr", config.replace(seed=4), progress=False,
              validation_from=held_out_store)
    assert not (tmp_path / "other.zarr").exists()  # refused before anything was written
    with pytest.raises(InputError, match="names the store being built"):
        build(tiny_input, held_out_store, config, progress=False, overwrite=True,
              validation_from=held_out_store)
    assert zstore.validated_bursts(zarr.open_group(str(held_out_store), mode="r"))  # intact
    with pytest.raises(InputError, match="holds no bursts out"):
        build(tiny_input, tmp_path / "none.zarr", config.replace(holdout=0.0), progress=False,
              validation_from=held_out_store)


def test_info_names_the_held_out_frames(held_out_store):
    from pcst_prep.report import store_info

    group = zarr.open_group(str(held_out_store), mode="r")
    table = group["validation/bursts"][:]
    assert set(table[:, 1]) == {1}  # scene_b, the second sequence, is held out whole
    frames = sorted({int(f) for row in table for f in row[3:]})
    assert frames == list(range(5))  # its 5 frames, in bursts of 3 with a stride of 2
    assert zstore.held_out_frames(group) == {"scene_b": frames}
    assert "held out       scene_b: frames 0-4 (0-based" in store_info(held_out_store)
    from pcst_prep.report import _ranges
    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8" and _ranges([3]) == "3"


def test_info_names_a_sequence_given_as_the_input_by_its_own_name(held_out_store, tmp_path):
    """A build of one video (or one frame folder) stores its sequence's path as "." (relative
    to the input, which it is): info names it by the input's name."""
    import shutil

    from pcst_prep.report import store_info

    copy = tmp_path / "copy.zarr"
    shutil.copytree(held_out_store, copy)
    group = zarr.open_group(str(copy), mode="r+")
    sources = group.attrs["sources"]
    sources[1]["path"] = "."
    group.attrs.update({"sources": sources, "input_dir": str(tmp_path / "clip.mp4")})
    text = store_info(copy)
    assert f"  clip.mp4: {sources[1]['n_frames']} frames" in text
    assert "held out       clip.mp4: frames 0-4 (0-based" in text and "  .:" not in text


def test_a_store_read_while_a_writer_renames_a_file_lists_its_bursts_without_warning(
        held_out_store, tmp_path):
    """``info`` or ``histogram`` on a store being built can meet zarr's temporary file of an
    atomic write (``*.partial``); the held-out bursts are listed as they are, with no
    warning about it (zarr's ZarrUserWarning reached users and CI's log)."""
    import shutil
    import warnings

    copy = tmp_path / "copy.zarr"
    shutil.copytree(held_out_store, copy)
    expected = zstore.validated_bursts(zarr.open_group(str(held_out_store), mode="r"))
    (copy / "validation" / "zarr.0a1b2c.partial").write_bytes(b"half")

    group = zarr.open_group(str(copy), mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert zstore.validated_bursts(group) == expected and expected
        assert zstore.validation_sources(group) == {}
    with pytest.warns(UserWarning, match="partial is not recognized"):  # what zarr says
        list(group["validation"].groups())


def test_the_progress_line_shows_the_best_validation_and_the_patience_left(held_out_store,
                                                                          tmp_path, capsys,
                                                                          monkeypatch):
    from pcst_train.config import TrainConfig
    from pcst_train.train import train

    monkeypatch.setenv("PCST_PROGRESS_SECONDS", "0")  # a line at every step (stderr: no tty)
    result = train(held_out_store, tmp_path, TrainConfig(steps=6, batch_size=4, lr=0.05,
                                                          validate_every=2, patience=3),
                   progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train: ")]
    assert len(lines) >= 6
    assert "val best" not in lines[0] or "at step 0" in lines[0]  # only the start judged yet
    last = lines[-1]
    assert f"val best {result['best_loss']:.4g} at step {result['best_step']}" in last
    assert "/3 without a new best" in last
    assert " at most " in last and " left" in last  # patience may stop it before the end
