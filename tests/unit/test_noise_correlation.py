"""The noise's correlation length from the residual t - y, and the ring hole it sets."""

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from pcst_prep.config import BuildConfig
from pcst_prep.errors import InputError
from pcst_prep.tune import (MIN_HOLE, block_correlations, noise_correlation, recommend_hole,
                            recommend_ring)


def reference_block_correlations(r, lags, block):
    """Plain loops: every whole block, its mean removed, sum of lagged products over pairs."""
    rows = []
    for i in range(r.shape[0] // block):
        for j in range(r.shape[1] // block):
            b = r[i * block:(i + 1) * block, j * block:(j + 1) * block].astype(np.float64)
            b = b - b.mean()
            energy = sum(v * v for v in b.ravel()) / b.size
            row = np.full((2, len(lags)), np.nan)
            if energy > 0:
                for k, lag in enumerate(lags):
                    h = sum(b[y, x] * b[y, x + lag] for y in range(block)
                            for x in range(block - lag))
                    v = sum(b[y, x] * b[y + lag, x] for y in range(block - lag)
                            for x in range(block))
                    row[0, k] = h / (block * (block - lag)) / energy
                    row[1, k] = v / (block * (block - lag)) / energy
            rows.append(row)
    return np.array(rows)


def box_noise(shape, kernel, rng):
    """i.i.d. Gaussian noise averaged over kernel x kernel: correlation (k - d) / k at lag d."""
    return uniform_filter(rng.standard_normal(shape), size=kernel, mode="wrap")


def test_block_correlations_match_plain_loops_borders_and_flat_blocks():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((23, 31)).astype(np.float32)  # 3 x 4 blocks of 7, edges cut off
    r[7:14, 0:7] = 0.25  # a constant block: no correlation defined

    found = block_correlations(r, lags=(1, 2, 3), block=7)
    expected = reference_block_correlations(r, (1, 2, 3), 7)

    assert found.shape == (12, 2, 3)
    np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-12)
    assert np.isnan(found[4]).all() and np.isfinite(np.delete(found, 4, axis=0)).all()


def test_block_correlations_reject_lags_as_long_as_the_block():
    with pytest.raises(ValueError, match="smaller than the block"):
        block_correlations(np.zeros((50, 50)), lags=(1, 25), block=25)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_the_median_over_blocks_finds_the_noise_correlation_under_content_error(kernel):
    """Box noise plus a content error in a tenth of the blocks (smooth, strong: an edge moved
    by a pixel): pooled over the frame the error adds its own correlation at every lag, the
    median over blocks is the noise's."""
    rng = np.random.default_rng(kernel)
    noise = box_noise((250, 400), kernel, rng)
    noise /= noise.std()
    r = noise.copy()
    for i, j in zip(rng.integers(0, 10, 16), rng.integers(0, 16, 16)):
        y, x = np.mgrid[0:25, 0:25]
        r[i * 25:(i + 1) * 25, j * 25:(j + 1) * 25] += 6.0 * np.tanh((x - 12 + 0.4 * y) / 4)
    truth = [max(0.0, (kernel - d) / kernel) for d in range(1, 7)]

    estimate = noise_correlation(block_correlations(r))
    pooled = noise_correlation(block_correlations(r, block=250))  # one block: the whole frame

    np.testing.assert_allclose(estimate, truth, atol=0.06)
    assert max(abs(p - t) for p, t in zip(pooled, truth)) > 0.2


def test_noise_correlation_takes_the_longer_axis():
    rng = np.random.default_rng(5)
    # correlated along rows only (vertical lag): 1 x 1 horizontally, 4 x 1 vertically
    r = uniform_filter(rng.standard_normal((200, 200)), size=(4, 1), mode="wrap")

    estimate = noise_correlation(block_correlations(r))

    np.testing.assert_allclose(estimate[:4], [0.75, 0.5, 0.25, 0.0], atol=0.06)


@pytest.mark.parametrize("correlation, window, hole", [
    ([0.02, 0.0, 0.0, 0.0, 0.0, 0.0], None, MIN_HOLE),   # independent noise
    ([0.5, 0.0, 0.0, 0.0, 0.0, 0.0], None, 3),           # box 2, demosaicing
    ([0.67, 0.33, 0.0, 0.0, 0.0, 0.0], None, 3),         # box 3: lag 2 below the threshold
    ([0.75, 0.5, 0.25, 0.0, 0.0, 0.0], None, 5),         # box 4
    ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], None, 13),
    ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 11, 9),             # capped below the window
    ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 10, 9),
])
def test_recommend_hole_covers_the_correlated_lags(correlation, window, hole):
    assert recommend_hole(correlation, window=window) == hole


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("5", 5), (7, 7), (0, 0)])
def test_config_accepts_an_auto_validation_hole(value, expected):
    assert BuildConfig(validation_hole=value).validation_hole == expected


@pytest.mark.parametrize("value", ["wide", 4, -1, 15])
def test_config_rejects_a_bad_validation_hole(value):
    with pytest.raises(InputError, match="validation_hole must be auto, 0 or odd"):
        BuildConfig(validation_hole=value)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("25", 25), (15, 15)])
def test_config_accepts_an_auto_validation_ring(value, expected):
    config = BuildConfig(validation_patch_size=value, validation_hole=5)
    assert config.validation_patch_size == expected


@pytest.mark.parametrize("settings, message", [
    ({"validation_patch_size": "wide"}, "validation_patch_size must be auto or in"),
    ({"validation_patch_size": 14}, "odd validation_patch_size"),  # a ring is odd
    # a hole that the smallest auto ring could not hold: refused before any measuring
    ({"validation_patch_size": "auto", "validation_hole": 15}, r"\(auto: at least 15\)"),
])
def test_config_rejects_a_bad_validation_ring(settings, message):
    with pytest.raises(InputError, match=message):
        BuildConfig(**settings)


@pytest.mark.parametrize("sigma, side, ring", [
    (5.0, None, 15), (17.9, None, 15), (18.0, None, 25), (27.0, None, 25),
    (27.0, 20, 19), (27.0, 24, 23),  # never wider than the frames' odd side allows
])
def test_recommend_ring_grows_with_the_noise(sigma, side, ring):
    assert recommend_ring(sigma, side) == ring
