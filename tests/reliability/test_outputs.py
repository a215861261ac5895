"""Outputs are whole or absent: a denoising or training that cannot finish says why in one
line (exit 2) and leaves no partial folder behind (issues 12.6 and 12.8)."""

import imagecodecs
import numpy as np

from conftest import TRAIN, assert_one_line_error, run
from helpers import write_frames


def test_an_rgb_model_on_a_grayscale_image_is_refused(tmp_path, demo_frames):
    gray = tmp_path / "gray.png"
    gray.write_bytes(imagecodecs.png_encode(
        np.round(demo_frames[0, :64, :64].mean(axis=-1) * 255).astype(np.uint8)))
    out = tmp_path / "out.png"

    result = run(TRAIN, "denoise", "pretrained", gray, out)

    assert_one_line_error(result, "gray.png", "1 channel(s) (grayscale)",
                          "denoises 3-channel (RGB) images")
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
