"""The walkthrough's last step: a noisy demo frame made by pcst-prep add-noise, denoised by
pcst-train denoise with its clean frame known, shown side by side."""

from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from click.testing import CliRunner

from pcst_prep.bursts import read_image
from pcst_prep.cli import main as prep
from pcst_train.cli import main as train_cli
from pcst_train.evaluate import scores

pytestmark = pytest.mark.slow
CLEAN = Path(__file__).resolve().parents[2] / "data" / "demo" / "bigbuckbunny" / "frame_017.png"


@pytest.fixture(scope="module")
def noisy_frame(tmp_path_factory):
    path = tmp_path_factory.mktemp("frame") / "noisy.png"
    result = CliRunner().invoke(prep, ["add-noise", str(CLEAN), str(path)])
    assert result.exit_code == 0, result.output
    return path, result


def test_add_noise_writes_the_demo_noise_at_16_bits(noisy_frame):
    path, result = noisy_frame
    stored = imagecodecs.png_decode(path.read_bytes())
    noise = read_image(path) - read_image(CLEAN)
    inside = (read_image(path) > 0) & (read_image(path) < 1)  # clipping aside

    assert stored.dtype == np.uint16 and stored.shape == (180, 320, 3)
    assert 19 < noise[inside].std() * 255 < 21  # sigma 20 of the demo pipeline
    assert "correlated-gaussian noise {'sigma': 20.0, 'kernel_size': 3}" in result.output


def test_denoise_against_the_clean_frame_writes_a_side_by_side_png(noisy_frame, tmp_path):
    noisy_path, _ = noisy_frame
    out, compare = tmp_path / "denoised.png", tmp_path / "compare.png"

    result = CliRunner().invoke(train_cli, ["denoise", "pretrained", str(noisy_path), str(out),
                                            "--clean", str(CLEAN), "--compare", str(compare)])

    assert result.exit_code == 0, result.output
    noisy, denoised, clean = read_image(noisy_path), read_image(out), read_image(CLEAN)
    p_noisy, p_out = scores(noisy, clean)[0], scores(denoised, clean)[0]
    assert p_out > p_noisy + 2  # the shipped UNet removes much of the correlated noise
    assert f"noisy {p_noisy:.2f} dB PSNR" in result.output
    assert f"denoised {p_out:.2f} dB" in result.output  # 16-bit output: same to 0.01 dB
    figure = imagecodecs.png_decode(compare.read_bytes())[..., :3].astype(np.float32) / 255
    assert figure.shape == (180 + 24, 3 * 320 + 2 * 8, 3)
    for i, panel in enumerate((noisy, denoised, clean)):  # one image pixel per PNG pixel
        shown = figure[24:, i * (320 + 8):i * (320 + 8) + 320]
        assert np.abs(shown - panel).mean() < 2 / 255


def test_compare_without_clean_has_two_panels(noisy_frame, tmp_path):
    noisy_path, _ = noisy_frame
    compare = tmp_path / "c.png"

    result = CliRunner().invoke(train_cli, ["denoise", "pretrained", str(noisy_path),
                                            str(tmp_path / "d.png"), "--compare", str(compare)])

    assert result.exit_code == 0, result.output
    assert imagecodecs.png_decode(compare.read_bytes()).shape[:2] == (180 + 24, 2 * 320 + 8)
    assert "dB" not in result.output


@pytest.mark.parametrize("case", ["folder", "clean_size", "clean_missing"])
def test_denoise_compare_refusals_are_one_line(noisy_frame, tmp_path, case):
    noisy_path, _ = noisy_frame
    small = tmp_path / "small.png"
    small.write_bytes(imagecodecs.png_encode(np.zeros((10, 12, 3), np.uint8)))
    source = noisy_path.parent if case == "folder" else noisy_path
    clean = {"folder": CLEAN, "clean_size": small, "clean_missing": tmp_path / "no.png"}[case]

    result = CliRunner().invoke(train_cli, ["denoise", "pretrained", str(source),
                                            str(tmp_path / "o.png"), "--clean", str(clean)])

    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("pcst-train: error: ")
    named = {"folder": source, "clean_size": small, "clean_missing": clean}[case]
    assert f"{named}: " in result.output


@pytest.mark.parametrize("args, message", [
    (["--pipeline", "real"], "the real pipeline adds no noise"),
    (["--noise", "nope"], "unknown noise model 'nope'"),
])
def test_add_noise_refusals_are_one_line(tmp_path, args, message):
    result = CliRunner().invoke(prep, ["add-noise", str(CLEAN), str(tmp_path / "n.png"), *args])

    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "n.png").exists()


def test_add_noise_names_a_missing_image(tmp_path):
    missing = tmp_path / "none.png"

    result = CliRunner().invoke(prep, ["add-noise", str(missing), str(tmp_path / "n.png")])

    assert result.exit_code == 2
    assert result.output == f"pcst-prep: error: {missing}: no such image file\n"
