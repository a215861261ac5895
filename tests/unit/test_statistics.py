"""Tile statistics, the s_min centering rule and the r_mean window."""

import numpy as np
import pytest

from pcst_prep import InputError, choose_s_min, craft_target, match_patches, mean_window, tile_stats
from pcst_prep.matching import extend_frames
from pcst_prep.statistics import TileFilter, choose_filter, offset_tile_stats
from pcst_prep.targets import all_offsets
from reference import tile_stats_loop


@pytest.fixture(scope="module")
def burst_and_nnf(demo_frames):
    rng = np.random.default_rng(3)
    clean = demo_frames[:3, 50:110, 60:150]
    burst = (clean + rng.normal(0, 0.08, clean.shape)).astype(np.float32)
    nnf, _ = match_patches(burst, 1, 7, 4)
    return burst, nnf


@pytest.mark.parametrize("size, stride", [(20, 9), (13, 13), (60, 5)])
def test_tile_stats_against_loops(burst_and_nnf, size, stride):
    burst, nnf = burst_and_nnf
    target = craft_target(burst, nnf, 7, (3, 2))
    s_yr, r_mean = tile_stats(burst[1], target, size, stride)
    expected_s, expected_r = tile_stats_loop(burst[1], target, size, stride)
    assert s_yr.shape == expected_s.shape
    np.testing.assert_allclose(s_yr, expected_s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r_mean, expected_r, rtol=1e-9, atol=1e-12)


def test_tile_stats_vectorised_over_targets(burst_and_nnf):
    burst, nnf = burst_and_nnf
    targets = np.stack([craft_target(burst, nnf, 7, o) for o in [(0, 0), (6, 1)]])
    s_yr, r_mean = tile_stats(burst[1], targets, 25, 10)
    for i in range(2):
        single = tile_stats(burst[1], targets[i], 25, 10)
        np.testing.assert_allclose(s_yr[i], single[0], rtol=1e-12)
        np.testing.assert_allclose(r_mean[i], single[1], rtol=1e-12)


def test_offset_tile_stats_equals_crafting_every_target(burst_and_nnf):
    burst, nnf = burst_and_nnf
    offsets = all_offsets(7)
    s_yr, r_mean = offset_tile_stats(extend_frames(burst, 7), 1, nnf, 7, offsets, 20, 9)
    for index in [0, 1, 8, 24, 48]:
        target = craft_target(burst, nnf, 7, tuple(offsets[index]))
        expected_s, expected_r = tile_stats_loop(burst[1], target, 20, 9)
        np.testing.assert_allclose(s_yr[index], expected_s, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(r_mean[index], expected_r, rtol=1e-9, atol=1e-12)


def test_s_yr_is_negative_when_the_target_copies_the_noise(demo_frames):
    # r = target - y; a target that shares none of y's noise has s_yr near -var(noise);
    # a target that copies y's noise has s_yr near 0 (r has no noise of y).
    rng = np.random.default_rng(0)
    clean = demo_frames[0, :100, :100]
    y = clean + rng.normal(0, 0.1, clean.shape)
    independent = clean + rng.normal(0, 0.1, clean.shape)
    s_good, _ = tile_stats(y, independent, 50, 50)
    s_copy, _ = tile_stats(y, y + 0.01, 50, 50)
    assert np.allclose(s_good, -0.01, atol=0.002)
    assert np.allclose(s_copy, 0.0, atol=1e-12)


def reference_walk(values, bins):
    """The rule as the reference states it, written as an explicit walk."""
    density, edges = np.histogram(values, bins=bins, density=True)
    centers = (edges[1:] + edges[:-1]) / 2
    peak = int(np.argmax(density))
    right = sum(density[i] * (centers[i] - centers[peak]) for i in range(peak + 1, bins))
    left = 0.0
    for i in range(peak - 1, -1, -1):
        left += density[i] * (centers[peak] - centers[i])
        if left > right:
            return centers[i]
    return -np.inf


def test_choose_s_min_follows_the_reference_walk(rng):
    values = np.concatenate([rng.normal(0, 1, 50_000), -np.abs(rng.normal(0, 6, 8_000))])
    s_min = choose_s_min(values, bins=501)
    assert np.isclose(s_min, reference_walk(values, 501))


def test_choose_s_min_centers_the_kept_histogram(rng):
    values = np.concatenate([rng.normal(-1.0, 0.5, 200_000), -1 - np.abs(rng.normal(0, 5, 40_000))])
    s_min = choose_s_min(values, bins=5001)
    kept = values[values > s_min]
    density, edges = np.histogram(kept, bins=201)
    peak = (edges[density.argmax()] + edges[density.argmax() + 1]) / 2
    assert abs(kept.mean() - peak) < 0.05      # mean = peak
    assert abs(values.mean() - peak) > 0.3     # which it was not before the cut
    assert 0.75 < kept.size / values.size < 0.95


def test_choose_s_min_without_a_tail_keeps_nearly_everything(rng):
    values = rng.normal(0, 1, 100_000)
    s_min = choose_s_min(values, bins=1001)
    assert (values > s_min).mean() > 0.95


def test_choose_s_min_degenerate_inputs():
    assert choose_s_min(np.ones(10)) == -np.inf
    with pytest.raises(InputError):
        choose_s_min([])
    with pytest.raises(InputError):
        choose_s_min([0.0, np.nan])


def test_mean_window():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.01, 0.002, 10_000), [0.5, -0.4]])
    window = mean_window(values, mean_std=3)
    assert window.low < 0.01 < window.high
    assert abs(window.center - 0.01) < 1e-4
    inside = values[(values > window.low) & (values < window.high)]
    assert np.isclose(window.center, inside.mean())
    assert mean_window(values, 1).high - mean_window(values, 1).low < window.high - window.low


@pytest.fixture(scope="module")
def scores():
    """s_yr and r_mean of 5 bursts x 30 offsets x 40 tiles: a Gaussian bump, a negative tail of
    bad matches, target bias around 0.01 with a few outliers, and NaN padding."""
    rng = np.random.default_rng(5)
    s_yr = rng.normal(-1e-4, 2e-4, (5, 30, 40))
    bad = rng.random(s_yr.shape) < 0.15
    s_yr[bad] -= np.abs(rng.normal(0, 3e-3, bad.sum()))
    r_mean = rng.normal(0.01, 0.002, s_yr.shape)
    r_mean[rng.random(s_yr.shape) < 0.01] += 0.5
    s_yr[:, :, 35:] = r_mean[:, :, 35:] = np.nan
    return s_yr, r_mean


def test_choose_filter_cuts_the_tail_then_windows_r_mean(scores):
    s_yr, r_mean = scores
    finite = np.isfinite(s_yr)

    f = choose_filter(s_yr, r_mean, bins=2001, mean_std=3)

    assert f.scored_pairs == finite.sum()
    assert np.isclose(f.s_min, choose_s_min(s_yr[finite], bins=2001))
    above = r_mean[s_yr > f.s_min]
    assert np.isclose(f.r_low, above.mean() - 3 * above.std())
    assert np.isclose(f.r_high, above.mean() + 3 * above.std())
    inside = (s_yr > f.s_min) & (r_mean > f.r_low) & (r_mean < f.r_high)
    assert f.kept_pairs == inside.sum() == f.keeps(s_yr, r_mean).sum()
    assert np.isclose(f.r_center, r_mean[inside].mean())
    assert not f.keeps(s_yr, r_mean)[~finite].any()
    assert TileFilter.from_attrs(f.to_attrs()) == f


def test_choose_filter_is_the_same_in_memory_and_out_of_core(scores):
    import dask.array as da

    s_yr, r_mean = scores

    in_memory = choose_filter(s_yr, r_mean, bins=2001, mean_std=1)
    chunked = choose_filter(da.from_array(s_yr, chunks=(1, 30, 40)),
                            da.from_array(r_mean, chunks=(1, 30, 40)), bins=2001, mean_std=1)

    for name in ("s_min", "r_low", "r_high", "r_center"):
        assert np.isclose(getattr(in_memory, name), getattr(chunked, name), rtol=1e-9)
    assert in_memory.kept_pairs == chunked.kept_pairs


def test_choose_filter_without_filtering_keeps_every_scored_pair(scores):
    s_yr, r_mean = scores

    f = choose_filter(s_yr, r_mean, bins=2001, mean_std=1, apply=False)

    assert f.kept_pairs == f.scored_pairs == np.isfinite(s_yr).sum()
    assert np.isclose(f.r_center, np.nanmean(r_mean))


def test_histogram_peak_finds_the_bump_whatever_the_tail():
    from pcst_prep.tune import histogram_peak

    rng = np.random.default_rng(4)
    bump = rng.normal(-0.006, 0.0004, 50_000)
    tail = -0.006 - np.abs(rng.normal(0, 0.01, 25_000))  # bad matches: a long negative tail

    assert histogram_peak(bump) == pytest.approx(-0.006, abs=1e-4)
    assert histogram_peak(np.concatenate([bump, tail])) == pytest.approx(-0.006, abs=2e-4)
    assert np.median(np.concatenate([bump, tail])) < -0.0062  # a median is dragged by the tail
