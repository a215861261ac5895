"""The paper's correlated Gaussian noise and the noise-model plug-in."""

import numpy as np
import pytest

from pcst_prep import CorrelatedGaussian, InputError, get_noise_model
from pcst_prep.noise import add_frame_noise, frame_rng


@pytest.mark.parametrize("k", [1, 2, 3])
def test_std_stays_sigma_and_neighbours_correlate(k):
    noise = CorrelatedGaussian(sigma=20, kernel_size=k).sample((4, 128, 128, 3), np.random.default_rng(0))
    assert abs(noise.std() * 255 - 20) < 0.5
    assert abs(noise.mean()) < 0.002
    lag1 = np.mean(noise[:, :, 1:] * noise[:, :, :-1]) / noise.var()
    assert abs(lag1 - (k - 1) / k) < 0.02    # box of k: overlap (k-1)/k at lag 1
    lag_k = np.mean(noise[:, :, k:] * noise[:, :, :-k]) / noise.var()
    assert abs(lag_k) < 0.02
    channels = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
    assert abs(channels) < 0.02


def test_seeded_per_frame():
    model = CorrelatedGaussian(10, 2)
    frames = np.zeros((3, 16, 16, 3), np.float32)
    a = model(frames[:1], frame_rng(1, 0, 3))
    assert np.array_equal(a, model(frames[:1], frame_rng(1, 0, 3)))
    assert not np.array_equal(a, model(frames[:1], frame_rng(1, 0, 4)))
    assert not np.array_equal(a, model(frames[:1], frame_rng(1, 1, 3)))
    # a frame gets the same noise in every burst that holds it, wherever it sits there
    first = add_frame_noise(model, frames, 1, 0, [1, 2, 3])
    second = add_frame_noise(model, frames, 1, 0, [3, 4, 5])
    assert np.array_equal(first[2], second[0]) and np.array_equal(first[2], a[0])
    assert not np.array_equal(first[0], first[1])


def scaled_poisson(peak=100.0):
    """A plug-in noise model for the test below."""
    class Poisson:
        name = "scaled-poisson"
        params = {"peak": peak}

        def __call__(self, frames, rng):
            return (rng.poisson(frames * peak) / peak).astype(np.float32)
    return Poisson()


def test_plug_in_by_import_path():
    model = get_noise_model("test_noise:scaled_poisson", peak=50.0)
    assert model.params == {"peak": 50.0}
    noisy = model(np.full((1, 32, 32, 1), 0.5, np.float32), np.random.default_rng(0))
    assert abs(noisy.var() - 0.5 / 50) < 0.003
    assert get_noise_model("none") is None
    assert isinstance(get_noise_model("correlated-gaussian", sigma=5, kernel_size=2), CorrelatedGaussian)


@pytest.mark.parametrize("name, params, message", [
    ("gaussian-ish", {}, "unknown noise model"),
    ("no_such_module:thing", {}, "cannot load"),
    ("correlated-gaussian", {"sigmaa": 3}, "bad parameters"),
    ("correlated-gaussian", {"sigma": -1}, "sigma must be"),
])
def test_bad_noise_models(name, params, message):
    with pytest.raises(InputError, match=message):
        get_noise_model(name, **params)


def test_camera_noise_is_exact_without_noise_and_behaves_like_a_camera(demo_frames):
    from pcst_prep.noise import CameraPipeline, srgb_decode, srgb_encode

    clean = demo_frames[:2]
    # no shot or read noise: the clean frame comes back exactly (it is the ground truth)
    silent = CameraPipeline(shot=0.0, read=0.0)(clean, np.random.default_rng(0))
    np.testing.assert_allclose(silent, clean, atol=1e-6)
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(srgb_encode(srgb_decode(x)), x, atol=1e-6)

    model = get_noise_model("camera", shot=0.006, read=0.006)
    noise = model(clean, np.random.default_rng(1)) - clean
    assert 22 < 10 * np.log10(1 / np.mean(noise ** 2)) < 28
    # signal dependent: on flat grey frames the noise level changes with the grey level
    flat = np.ones((1, 64, 64, 3), np.float32)
    levels = [float((model(flat * v, np.random.default_rng(0)) - flat * v).std())
              for v in (0.1, 0.9)]
    assert levels[0] > 1.3 * levels[1]
    # correlated across neighbours (demosaicing) and across channels (colour matrix)
    g = noise[..., 1]
    assert np.corrcoef(g[:, :, 1:].ravel(), g[:, :, :-1].ravel())[0, 1] > 0.2
    assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) > 0.2
    # and not Gaussian
    z = (noise - noise.mean()) / noise.std()
    assert abs(np.mean(z ** 3)) > 0.2 or abs(np.mean(z ** 4) - 3) > 0.5


def test_camera_noise_grayscale_and_bad_channels():
    model = get_noise_model("camera")
    gray = np.full((1, 32, 32, 1), 0.5, np.float32)
    assert model(gray, np.random.default_rng(0)).shape == gray.shape
    with pytest.raises(InputError, match="1 or 3 channels"):
        model(np.zeros((1, 8, 8, 2), np.float32), np.random.default_rng(0))
    with pytest.raises(InputError, match="saturation"):
        get_noise_model("camera", saturation=2)
