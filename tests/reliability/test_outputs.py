"""Outputs are whole or absent: a denoising or training that cannot finish says why in one
line (exit 2) and leaves no partial folder behind (issues 12.6 and 12.8)."""

import imagecodecs
import numpy as np

from conftest import TRAIN, assert_one_line_error, run
from helpers import write_frames


def test_a_grayscale_model_on_an_rgb_image_is_refused(tmp_path, demo_frames):
    """(An RGB model on a grey image runs as its grayscale copy; the other way round a grey
    model cannot make colour.)"""
    from pcst_train.checkpoints import load_model, save_checkpoint
    from pcst_train.models import as_grayscale

    grey_model = save_checkpoint(tmp_path / "grey.pt", as_grayscale(load_model("pretrained")[0]),
                                 "unet")
    rgb = tmp_path / "rgb.png"
    rgb.write_bytes(imagecodecs.png_encode(
        np.round(demo_frames[0, :64, :64] * 255).astype(np.uint8)))
    out = tmp_path / "out.png"

    result = run(TRAIN, "denoise", grey_model, rgb, out)

    assert_one_line_error(result, "rgb.png", "3 channel(s) (RGB)",
                          "denoises 1-channel (grayscale) images")
    assert not out.exists()


def test_a_folder_with_a_corrupt_frame_writes_nothing(tmp_path, demo_frames):
    folder = tmp_path / "frames"
    write_frames(folder, demo_frames[:3, :48, :64])
    broken = folder / "f2.png"
    broken.write_bytes(broken.read_bytes()[:200])  # the header survives, the pixels do not
    out = tmp_path / "denoised"

    result = run(TRAIN, "denoise", "pretrained", folder, out)

    assert_one_line_error(result, "f2.png", "cannot decode image")
    assert not out.exists()


def test_a_training_that_fails_before_its_first_step_leaves_no_folder(tmp_path):
    store = tmp_path / "missing.zarr"
    result = run(TRAIN, store, "--out", tmp_path / "run", "--steps", "2")
    assert_one_line_error(result, "missing.zarr", "no such store")
    assert not (tmp_path / "run").exists()
