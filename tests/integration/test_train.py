"""pcst-train on tiny stores: loss goes down, resume equals uninterrupted, bad input, denoise,
evaluate, import boundaries."""

import os
import shutil
import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner

from pcst_prep.errors import InputError
from pcst_train.checkpoints import load_model, read_checkpoint
from pcst_train.cli import main
from pcst_train.data import StoreDataset, make_loader
from pcst_train.metrics import psnr
from pcst_train.models import build_model
from pcst_train.train import TrainConfig, train

pytestmark = pytest.mark.slow
SMALL = {"model": "dncnn", "init": "scratch", "epochs": 2, "batch_size": 8}


def small_config(**changes):
    return TrainConfig(**{**SMALL, **changes})


def _tiles_and_targets(path):
    """Every training tile's input and the targets it may be paired with (the K stored ones
    of a format-1 store, every kept offset's of a format-2 store)."""
    from pcst_prep import store as zstore
    from pcst_train.data import BurstTiles

    group = zstore.open_store(path)
    if zstore.format_version(group) == 1:
        valid = group["samples/valid"][...]
        return group["samples/input"][...], [t[v] for t, v in zip(group["samples/targets"][...],
                                                                  valid)]
    table, inputs, targets = zstore.burst_table(group), [], []
    for burst in range(len(table["source"])):
        tiles = BurstTiles(group, table, burst)
        for row in tiles.rows:
            inputs.append(tiles.input(row))
            targets.append(np.stack([tiles.target(row, o) for o in tiles.offsets(row)]))
    return np.stack(inputs), targets


@pytest.mark.parametrize("version", [1, 2])
def test_dataset_streams_valid_pairs_with_bias_removed(tiny_store, tiny_store_v1, version):
    store = tiny_store if version == 2 else tiny_store_v1
    group = zarr.open_group(str(store), mode="r")
    r_center = group.attrs["filter"]["r_center"]
    dataset = StoreDataset(store, seed=1, augment=False)
    pairs = list(dataset)
    inputs, targets = _tiles_and_targets(store)
    assert len(pairs) == len(dataset) == len(inputs) == group.attrs["counts"]["samples"]
    seen = set()
    for x, y in pairs:
        i = int(np.argmin(np.abs(inputs - x.numpy().transpose(1, 2, 0)).sum(axis=(1, 2, 3))))
        seen.add(i)
        options = targets[i] - r_center
        assert np.any(np.all(np.isclose(options, y.numpy().transpose(1, 2, 0)), axis=(1, 2, 3)))
    assert len(seen) == len(pairs)  # every sample exactly once per epoch
    dataset.set_epoch(1)
    assert not torch.equal(next(iter(dataset))[0], pairs[0][0])  # order changes per epoch


def test_loader_with_spawned_workers_sees_every_sample_and_each_epoch(tiny_store):
    dataset = StoreDataset(tiny_store, seed=0)
    loader = make_loader(dataset, batch_size=16, workers=2)  # workers live across epochs
    epochs = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        epochs.append(torch.cat([b[0] for b in loader]))
    assert len(epochs[0]) == len(epochs[1]) == len(dataset)
    assert not torch.equal(epochs[0], epochs[1])  # the new epoch reached the running workers
    fresh = StoreDataset(tiny_store, seed=0)
    fresh.set_epoch(1)  # what workers started at epoch 1 yield
    assert torch.equal(torch.cat([b[0] for b in make_loader(fresh, 16, workers=2)]), epochs[1])


def test_a_few_steps_lower_the_loss(tiny_store, tmp_path):
    dataset = StoreDataset(tiny_store, seed=5, augment=False)
    fixed = list(dataset)[:32]
    x = torch.stack([p[0] for p in fixed])
    y = torch.stack([p[1] for p in fixed])
    torch.manual_seed(0)
    model = build_model("unet")
    with torch.no_grad():
        before = torch.nn.functional.mse_loss(model.eval()(x), y).item()
    train(tiny_store, tmp_path, TrainConfig(model="unet", init="scratch", steps=30, batch_size=8,
                                            lr=1e-3), progress=False)
    trained, _ = load_model(tmp_path / "final.pt")
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(trained.eval()(x), y).item()
    assert after < 0.5 * before
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,step,loss,lr,samples,val_loss,val_psnr,seconds" and len(log) > 30
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.pt"
    from pcst_train.checkpoints import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(path, build_model("dncnn", layers=4, kernels=8), "dncnn")


def run_cli(*args):
    return subprocess.Popen([sys.executable, "-c", "from pcst_train.cli import main; main()",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(store_copy, tmp_path):
    train(store_copy, tmp_path, small_config(epochs=1), progress=False)
    good_step = read_checkpoint(tmp_path / "last.pt")["step"]
    group = zarr.open_group(str(store_copy), mode="r+")
    for source in ("0000", "0001"):
        group[f"sources/{source}/noisy"][...] = np.nan
    with pytest.raises(InputError, match=r"loss became nan .*last good checkpoint is .*last\.pt"):
        train(store_copy, tmp_path, small_config(epochs=2), resume="auto", progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["step"] == good_step


def test_incomplete_foreign_and_missing_stores_are_refused(store_copy, tmp_path):
    zarr.open_group(str(store_copy), mode="r+").attrs["status"] = "building"
    with pytest.raises(InputError, match="did not finish"):
        train(store_copy, tmp_path / "a", small_config(), progress=False)
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w").attrs["hello"] = 1
    with pytest.raises(InputError, match="not a pcst store"):
        train(foreign, tmp_path / "b", small_config(), progress=False)
    with pytest.raises(InputError, match="no such store"):
        train(tmp_path / "nope.zarr", tmp_path / "c", small_config(), progress=False)


def test_cli_errors_are_one_line(store_copy, tmp_path):
    result = CliRunner().invoke(main, [str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("pcst-train: error:") and "nope.zarr" in result.output
    if not torch.cuda.is_available():
        result = CliRunner().invoke(main, [str(store_copy), "--out", str(tmp_path / "r"),
                                           "--device", "cuda"])
        assert result.exit_code == 2 and "no CUDA device" in result.output
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "pretrain" in result.output and "denoise" in result.output


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_denoise_keeps_shape_and_bit_depth(small_model, tmp_path, dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, (37, 53, 3), dtype=dtype)
    (tmp_path / "in.png").write_bytes(imagecodecs.png_encode(image))
    result = CliRunner().invoke(main, ["denoise", str(small_model), str(tmp_path / "in.png"),
                                       str(tmp_path / "out.png"), "--tile", "24", "--overlap", "6"])
    assert result.exit_code == 0, result.output
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    assert out.dtype == dtype and out.shape == image.shape


def test_tiled_denoising_equals_whole_frame(small_model):
    model, _ = load_model(small_model)
    from pcst_train.denoise import denoise_array

    image = np.random.default_rng(1).random((45, 61, 3), dtype=np.float32)
    whole = denoise_array(model, image, tile=512)
    tiled = denoise_array(model, image, tile=40, overlap=12)  # 12 > DnCNN-4's receptive radius
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_denoise_frame_folder(small_model, tmp_path, demo_dir):
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("frame_000.png", "frame_001.png"):
        shutil.copy(demo_dir / name, frames / name)
    result = CliRunner().invoke(main, ["denoise", str(small_model), str(frames), str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["frame_000.png", "frame_001.png"]


def test_evaluate_psnr_equals_a_direct_computation(small_model, tmp_path, demo_frames):
    from pcst_train.denoise import denoise_array

    clean_dir, noisy_dir = tmp_path / "clean", tmp_path / "noisy"
    clean_dir.mkdir(), noisy_dir.mkdir()
    rng = np.random.default_rng(3)
    clean = np.round(demo_frames[0, :40, :60] * 65535).astype(np.uint16)
    noisy = np.clip(clean + rng.normal(0, 3000, clean.shape), 0, 65535).astype(np.uint16)
    (clean_dir / "a.png").write_bytes(imagecodecs.png_encode(clean))
    (noisy_dir / "a.png").write_bytes(imagecodecs.png_encode(noisy))
    result = CliRunner().invoke(main, ["evaluate", str(small_model), "--clean", str(clean_dir),
                                       "--noisy", str(noisy_dir), "--csv", str(tmp_path / "e.csv")])
    assert result.exit_code == 0, result.output
    model, _ = load_model(small_model)
    out = np.clip(denoise_array(model, noisy.astype(np.float32) / 65535), 0, 1).astype(np.float64)
    direct = 10 * np.log10(1.0 / np.mean((out - clean / 65535.0) ** 2))
    direct_noisy = 10 * np.log10(1.0 / np.mean((noisy / 65535.0 - clean / 65535.0) ** 2))
    row = (tmp_path / "e.csv").read_text().splitlines()[1].split(",")
    assert row[0] == "a"
    assert abs(float(row[1]) - direct_noisy) < 1e-4 and abs(float(row[2]) - direct) < 1e-4
    assert float(psnr(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5), 1.0)) == pytest.approx(
        10 * np.log10(4))


def test_import_boundaries():
    code = ("import sys, pcst_train.cli, pcst_train.train, pcst_train.data, pcst_train.denoise, "
            "pcst_train.evaluate, pcst_train.pretrain; "
            "print(sorted(m for m in ('numba', 'dask', 'distributed') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
    code = ("import sys, pcst_prep.cli, pcst_prep.build, pcst_prep.report; "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_without_torch_the_command_line_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from pcst_train.cli import main; "
            "main(sys.argv[1:], prog_name='pcst-train')")

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)

    for args in ([tmp_path / "s.zarr", "--out", tmp_path / "r"],
                 ["pretrain", tmp_path, "--out", tmp_path / "p"]):
        result = run(*map(str, args))
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == ("pcst-train: error: torch is not installed; install the "
                                 "trainer with: pip install 'pcst[train]'\n")
    result = run("pretrain", "--help")  # describing itself needs no torch
    assert result.returncode == 0 and "--sigma-max" in result.stdout


@pytest.mark.parametrize("output, expected", [("frames", "folder"), ("clip.mp4", "video")])
def test_denoise_video(small_model, tmp_path, demo_frames, output, expected):
    import imageio.v3 as iio

    frames8 = np.round(demo_frames[:3, :48, :64] * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "in.mp4", frames8, plugin="pyav", codec="libx264", fps=12)
    result = CliRunner().invoke(main, ["denoise", str(small_model), str(tmp_path / "in.mp4"),
                                       str(tmp_path / output)])
    assert result.exit_code == 0, result.output
    if expected == "folder":
        written = sorted((tmp_path / output).iterdir())
        assert [p.name for p in written] == ["000000.png", "000001.png", "000002.png"]
        frame = imagecodecs.png_decode(written[0].read_bytes())
        assert frame.dtype == np.uint16 and frame.shape == (48, 64, 3)
    else:
        video = iio.imread(tmp_path / output, plugin="pyav")
        assert video.shape == (3, 48, 64, 3)
        assert iio.immeta(tmp_path / output, plugin="pyav")["fps"] == 12  # the source's rate


def test_denoise_one_frame_of_a_video_or_folder(small_model, tmp_path, demo_frames):
    """--frame N denoises frame N alone, the same as denoising the whole sequence does, at
    the source's bit depth, and --compare and --clean work on it."""
    import imageio.v3 as iio

    from pcst_prep.bursts import write_image

    frames8 = np.round(demo_frames[:3, :48, :64] * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "in.mp4", frames8, plugin="pyav", codec="libx264", fps=25)
    folder = tmp_path / "seq"
    for i, frame in enumerate(demo_frames[:3, :48, :64]):
        write_image(folder / f"f{i}.png", frame, np.uint16)
    runner = CliRunner()
    assert runner.invoke(main, ["denoise", str(small_model), str(tmp_path / "in.mp4"),
                                str(tmp_path / "all")]).exit_code == 0
    whole = imagecodecs.png_decode((tmp_path / "all" / "000001.png").read_bytes())
    result = runner.invoke(main, ["denoise", str(small_model), str(tmp_path / "in.mp4"),
                                  str(tmp_path / "one"), "--frame", "1", "--compare",
                                  str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    one = imagecodecs.png_decode((tmp_path / "one" / "in_000001.png").read_bytes())
    assert one.dtype == np.uint16  # as the whole video's frames: the result's bits kept
    np.testing.assert_array_equal(one, whole)
    assert (tmp_path / "c.png").exists()
    clean = tmp_path / "clean.png"
    write_image(clean, demo_frames[2, :48, :64], np.uint16)
    result = runner.invoke(main, ["denoise", str(small_model), str(folder),
                                  str(tmp_path / "two.png"), "--frame", "2", "--clean",
                                  str(clean)])
    assert result.exit_code == 0, result.output
    assert "against" in result.output and "dB PSNR" in result.output
    two = imagecodecs.png_decode((tmp_path / "two.png").read_bytes())
    assert two.dtype == np.uint16 and two.shape == (48, 64, 3)
    for args, message in ((["--frame", "3"], "has 3 frames (0 to 2), no frame 3"),
                          (["--compare", str(tmp_path / "c2.png")], "single image")):
        result = runner.invoke(main, ["denoise", str(small_model), str(folder),
                                      str(tmp_path / "x.png"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    result = runner.invoke(main, ["denoise", str(small_model), str(clean), str(tmp_path / "y.png"),
                                  "--frame", "0"])
    assert result.exit_code == 2 and "not of an image" in result.output
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_store_without_samples_is_refused(store_copy, tmp_path):
    group = zarr.open_group(str(store_copy), mode="r+")
    group["bursts/tiles"][...] = 0
    with pytest.raises(InputError, match="holds no training samples"):
        train(store_copy, tmp_path, small_config(), progress=False)


def test_the_pixel_filter_changes_what_is_learnt_and_is_recorded(tiny_store, tmp_path):
    """The trainer's loss is the filtered one: the same run with --pixel-filter 0 and 2 ends
    with other weights; clean targets train (and are recorded) with the plain MSE."""
    weights = {}
    for factor in (0.0, 2.0):
        out = tmp_path / f"f{factor:g}"
        train(tiny_store, out, small_config(steps=6, pixel_filter=factor), progress=False)
        state = read_checkpoint(out / "final.pt")
        assert state["train_config"]["pixel_filter"] == factor
        weights[factor] = state["state_dict"]
    assert any(not torch.equal(weights[0.0][k], weights[2.0][k]) for k in weights[0.0])
    out = tmp_path / "clean"
    train(tiny_store, out, small_config(steps=2, clean_targets=True), progress=False)
    assert read_checkpoint(out / "final.pt")["train_config"]["pixel_filter"] == 0.0


def test_a_run_from_before_the_pixel_filter_resumes_with_plain_mse(tiny_store, tmp_path):
    from pcst_train.checkpoints import save_checkpoint
    from pcst_train.cli import _resumed_settings

    train(tiny_store, tmp_path, small_config(steps=2), progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    del state["train_config"]["pixel_filter"]  # as a checkpoint written before the option
    model, _ = load_model(tmp_path / "last.pt")
    extra = {k: v for k, v in state.items()
             if k not in ("format", "version", "model", "model_config", "state_dict")}
    save_checkpoint(tmp_path / "last.pt", model, state["model"], **extra)
    settings = _resumed_settings(tiny_store, tmp_path, "auto", {})
    assert settings["pixel_filter"] == 0.0
    assert _resumed_settings(tiny_store, tmp_path, "auto", {"pixel_filter": 2.0}) \
        ["pixel_filter"] == 2.0


def test_a_run_from_before_the_validation_filter_keeps_judging_every_pixel(tiny_store,
                                                                          tmp_path):
    """Resumed, a run whose checkpoint predates --validation-filter goes on with the
    validation loss it logged so far (every pixel); another filter is refused."""
    from pcst_train.checkpoints import save_checkpoint
    from pcst_train.cli import _resumed_settings

    train(tiny_store, tmp_path, small_config(steps=2), progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["train_config"]["validation_filter"] == 2.0
    del state["train_config"]["validation_filter"]  # as a checkpoint written before the option
    model, _ = load_model(tmp_path / "last.pt")
    extra = {k: v for k, v in state.items()
             if k not in ("format", "version", "model", "model_config", "state_dict")}
    save_checkpoint(tmp_path / "last.pt", model, state["model"], **extra)
    assert _resumed_settings(tiny_store, tmp_path, "auto", {})["validation_filter"] == 0.0
    with pytest.raises(InputError, match="--validation-filter 2.0 differs"):
        _resumed_settings(tiny_store, tmp_path, "auto", {"validation_filter": 2.0})


def test_a_run_from_before_the_absolute_error_goes_on_with_the_squared_one(tiny_store, tmp_path,
                                                                        capsys):
    """Resumed, a run whose checkpoint predates --loss trains and is judged on with the
    squared error it started with, and says so; the absolute error is refused for it."""
    from pcst_train.checkpoints import save_checkpoint
    from pcst_train.cli import _resumed_settings

    train(tiny_store, tmp_path, small_config(steps=2), progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    assert (state["train_config"]["loss"], state["train_config"]["validation_loss"]) \
        == ("mae", "mae")  # today's defaults, recorded
    for name in ("loss", "validation_loss"):  # as a checkpoint written before the options
        del state["train_config"][name]
    model, _ = load_model(tmp_path / "last.pt")
    extra = {k: v for k, v in state.items()
             if k not in ("format", "version", "model", "model_config", "state_dict")}
    save_checkpoint(tmp_path / "last.pt", model, state["model"], **extra)
    settings = _resumed_settings(tiny_store, tmp_path, "auto", {})
    assert (settings["loss"], settings["validation_loss"]) == ("mse", "mse")
    assert "predates --loss" in capsys.readouterr().err
    with pytest.raises(InputError, match="--loss mae differs"):
        _resumed_settings(tiny_store, tmp_path, "auto", {"loss": "mae"})


class _OnGrey(torch.nn.Module):
    """An RGB model run on the grey frame in every channel, its outputs averaged."""

    def __init__(self, rgb):
        super().__init__()
        self.rgb = rgb

    def forward(self, x):
        return self.rgb(x.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True)


def test_grayscale_footage_starts_from_the_shipped_rgb_model(tmp_path, tiny_config, demo_frames):
    """Microscopy and most scientific cameras give grey frames: the default path (build,
    pcst-train from the shipped RGB UNet, denoise) works on them, starting from the RGB model
    on the grey frame in every channel, its outputs averaged."""
    import csv

    from pcst_prep.build import build
    from pcst_train.evaluate import scores
    from pcst_train.train import HeldOut
    from helpers import write_frames

    grey = demo_frames.mean(axis=-1)
    write_frames(tmp_path / "input" / "scene_a", grey[:7, 30:90, 40:120])
    write_frames(tmp_path / "input" / "scene_b", grey[7:12, 100:160, 200:300])
    store = tmp_path / "grey.zarr"
    build(tmp_path / "input", store, tiny_config.replace(holdout=0.5, validation_patch_size=15),
          progress=False)

    result = CliRunner().invoke(main, ["train", str(store), "--out", str(tmp_path / "run"),
                                       "--steps", "2", "--batch-size", "4",
                                       "--validate-every", "2", "--no-progress"])

    assert result.exit_code == 0, result.output
    assert "started from pretrained (RGB) as a grayscale model" in result.output
    assert "of their target pixels: --validation-filter 2)" in result.output
    trained, data = load_model(tmp_path / "run" / "final.pt")
    assert trained.channels == 1 and data["train_config"]["init"] == "pretrained"
    assert data["init_converted"] == "as_grayscale"
    with open(tmp_path / "run" / "log.csv") as f:
        start = next(float(r["val_loss"]) for r in csv.DictReader(f)
                     if r["val_loss"] and r["step"] == "0")
    shipped = _OnGrey(load_model("pretrained")[0])
    assert start == pytest.approx(HeldOut(store).evaluate(shipped, "cpu")["val_loss"], rel=1e-5)

    # a grey run resumes from its own 1-channel checkpoint, not from a new grey copy
    resumed = CliRunner().invoke(main, ["train", str(store), "--out", str(tmp_path / "run"),
                                        "--resume", "--steps", "4", "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    assert "trained 4 steps" in resumed.output
    assert "(resumed at step 2: this session's time)" in resumed.output
    assert "as a grayscale model" not in resumed.output
    longer, data = load_model(tmp_path / "run" / "final.pt")
    assert longer.channels == 1 and data["init_converted"] == "as_grayscale"
    assert any(not torch.equal(trained.state_dict()[k], v)
               for k, v in longer.state_dict().items())
    with open(tmp_path / "run" / "log.csv") as f:
        assert [r["step"] for r in csv.DictReader(f) if r["val_loss"]] == ["0", "2", "4"]

    # denoising a grey image with the shipped model: the same model, a grey image out
    image = tmp_path / "grey.png"
    image.write_bytes(imagecodecs.png_encode(np.round(grey[0, :64, :64] * 65535).astype(
        np.uint16)))
    denoised = CliRunner().invoke(main, ["denoise", "pretrained", str(image),
                                         str(tmp_path / "out.png")])
    assert denoised.exit_code == 0, denoised.output
    assert "grayscale, denoised by the RGB model's grayscale copy" in denoised.stderr
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    assert out.dtype == np.uint16 and out.shape == (64, 64)
    with torch.no_grad():
        expected = shipped(torch.from_numpy(np.round(grey[0, :64, :64] * 65535).astype(
            np.float32)[None, None] / 65535))[0, 0].numpy()
    assert np.abs(out / 65535 - np.clip(expected, 0, 1)).max() < 2e-4

    # evaluate against clean grey frames: the same model's PSNR
    write_frames(tmp_path / "clean", grey[12:14, :64, :96])
    noisy = grey[12:14, :64, :96] + np.random.default_rng(5).normal(0, 0.08, (2, 64, 96))
    write_frames(tmp_path / "noisy", noisy)
    table = tmp_path / "evaluation.csv"
    evaluated = CliRunner().invoke(main, ["evaluate", "pretrained", "--clean",
                                          str(tmp_path / "clean"), "--noisy",
                                          str(tmp_path / "noisy"), "--csv", str(table)])
    assert evaluated.exit_code == 0, evaluated.output
    with open(table) as f:
        rows = {r["image"]: float(r["psnr"]) for r in csv.DictReader(f)}
    for i in range(2):
        stored = np.round(np.clip(noisy[i], 0, 1) * 65535) / 65535
        clean = np.round(grey[12 + i, :64, :96] * 65535) / 65535
        with torch.no_grad():
            out = shipped(torch.from_numpy(stored.astype(np.float32))[None, None])[0, 0].numpy()
        direct = scores(np.clip(out, 0, 1)[..., None], clean[..., None])[0]
        assert rows[f"f{i}"] == pytest.approx(direct, abs=0.01)
