"""PSNR and SSIM are scikit-image's: our per-image figures, and evaluate's table, equal the
library's called directly on the files, on real frames."""

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from pcst_prep.bursts import read_image
from pcst_train.denoise import write_image
from pcst_train.evaluate import evaluate_folders
from pcst_train.metrics import psnr, ssim

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "bigbuckbunny"


def _noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 0.08, clean.shape)
    return np.clip(clean + noise, 0, 1).astype(np.float32)


def _chw(*images):
    return [torch.from_numpy(np.ascontiguousarray(i.transpose(2, 0, 1))) for i in images]


@pytest.mark.parametrize("frame", ["frame_003.png", "frame_017.png"])
def test_figures_equal_scikit_image_on_a_real_frame(frame):
    clean = read_image(DEMO / frame)
    noisy = _noisy(clean, 0)
    a, b = _chw(noisy, clean)

    ours = float(psnr(a, b, 1.0)), float(ssim(a, b, 1.0))

    expected_psnr = peak_signal_noise_ratio(clean.astype(np.float64), noisy.astype(np.float64),
                                            data_range=1.0)
    expected_ssim = structural_similarity(clean.astype(np.float64), noisy.astype(np.float64),
                                          data_range=1.0, channel_axis=2, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False)
    assert ours == pytest.approx((expected_psnr, expected_ssim), abs=1e-12)
    mse = np.mean((noisy.astype(np.float64) - clean) ** 2)  # the definition, independently
    assert ours[0] == pytest.approx(10 * np.log10(1 / mse), abs=1e-9)


def test_per_image_figures_of_a_batch_and_an_explicit_data_range():
    clean = np.stack([read_image(DEMO / f"frame_00{i}.png") for i in range(3)])
    noisy = np.stack([_noisy(c, i) for i, c in enumerate(clean)])
    a = torch.from_numpy(noisy.transpose(0, 3, 1, 2).copy())
    b = torch.from_numpy(clean.transpose(0, 3, 1, 2).copy())

    batch = psnr(a, b, 1.0), ssim(a, b, 1.0)
    single = [float(psnr(a[i], b[i], 1.0)) for i in range(3)], \
        [float(ssim(a[i], b[i], 1.0)) for i in range(3)]
    scaled = psnr(a * 255, b * 255, 255.0), ssim(a * 255, b * 255, 255.0)

    assert batch[0].shape == batch[1].shape == (3,)
    assert batch[0].tolist() == pytest.approx(single[0])
    assert batch[1].tolist() == pytest.approx(single[1])
    assert scaled[0].tolist() == pytest.approx(batch[0].tolist())
    assert scaled[1].tolist() == pytest.approx(batch[1].tolist())


def test_identical_images_have_infinite_psnr_and_ssim_one():
    image = _chw(read_image(DEMO / "frame_000.png"))[0]

    assert float(psnr(image, image, 1.0)) == np.inf
    assert float(ssim(image, image, 1.0)) == pytest.approx(1.0)


def test_evaluate_table_equals_scikit_image_on_the_files(tmp_path):
    clean_dir, noisy_dir = tmp_path / "clean", tmp_path / "noisy"
    for i in (5, 12):
        clean = read_image(DEMO / f"frame_{i:03d}.png")
        write_image(clean_dir / f"f{i}.png", clean, np.uint8)
        write_image(noisy_dir / f"f{i}.png", _noisy(clean, i), np.uint8)

    rows = evaluate_folders(nn.Identity(), clean_dir, noisy_dir)

    for row in rows[:-1]:
        clean = read_image(clean_dir / f"{row['image']}.png").astype(np.float64)
        noisy = read_image(noisy_dir / f"{row['image']}.png").astype(np.float64)
        assert row["psnr_noisy"] == pytest.approx(
            peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-9)
        assert row["ssim_noisy"] == pytest.approx(structural_similarity(
            clean, noisy, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False), abs=1e-9)
        assert row["psnr"] == pytest.approx(row["psnr_noisy"], abs=1e-5)  # identity model
