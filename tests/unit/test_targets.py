"""Patch-craft targets against a patch-by-patch pasting reference."""

import numpy as np
import pytest

from pcst_prep import InputError, craft_target, craft_targets, match_patches
from pcst_prep.matching import extend_frames
from pcst_prep.targets import all_offsets, craft_region
from reference import craft_target_loop


@pytest.fixture(scope="module")
def noisy_burst(demo_frames):
    rng = np.random.default_rng(5)
    clean = demo_frames[:5, 40:77, 100:151]  # 37 x 51: p does not divide the frame
    return (clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32)


@pytest.mark.parametrize("p", [1, 4, 7])
def test_every_offset_matches_pasting_whole_patches(noisy_burst, p):
    nnf, _ = match_patches(noisy_burst, 2, p, 3)
    offsets = all_offsets(p)
    stacked = craft_targets(noisy_burst, nnf, p, offsets)
    assert stacked.shape == (p * p,) + noisy_burst.shape[1:] and stacked.dtype == np.float32
    for offset, target in zip(offsets, stacked):
        expected = craft_target_loop(noisy_burst, nnf, p, tuple(offset))
        assert not np.isnan(expected).any()  # the reference covered every pixel
        np.testing.assert_array_equal(target, expected)


def test_offsets_give_different_targets(noisy_burst):
    nnf, _ = match_patches(noisy_burst, 2, 5, 3)
    a = craft_target(noisy_burst, nnf, 5, (0, 0))
    b = craft_target(noisy_burst, nnf, 5, (2, 3))
    assert not np.array_equal(a, b)
    # each target is made of pixels of the other frames, not of the center
    assert not np.isclose(a, noisy_burst[2]).all(axis=-1).any()


def test_target_is_close_to_the_clean_frame(demo_frames):
    # The method's premise: a target is a noisy copy of the clean center, with fresh noise.
    rng = np.random.default_rng(7)
    clean = demo_frames[:7, 20:120, 40:200]
    noisy = (clean + rng.normal(0, 0.03, clean.shape)).astype(np.float32)
    nnf, _ = match_patches(noisy, 3, 9, 6)
    target = craft_target(noisy, nnf, 9, (4, 4))
    error_target = np.sqrt(((target - clean[3]) ** 2).mean())
    error_neighbour = np.sqrt(((noisy[4] - clean[3]) ** 2).mean())
    assert error_target < error_neighbour  # matching beats the raw neighbouring frame
    assert error_target < 0.05


def test_region_equals_crop_of_full_target(noisy_burst):
    p = 6
    nnf, _ = match_patches(noisy_burst, 2, p, 2)
    full = craft_target(noisy_burst, nnf, p, (5, 1))
    region = craft_region(extend_frames(noisy_burst, p), nnf, p, (5, 1), slice(3, 20), slice(7, 40))
    np.testing.assert_array_equal(region, full[3:20, 7:40])


@pytest.mark.parametrize("p", [1, 4, 7, 13])
def test_tile_regions_equal_the_pasting_reference_at_every_border(noisy_burst, p, monkeypatch):
    """Tiles are crafted by one slice copy per patch they overlap, larger regions pixel by
    pixel: both against the reference, at the frame's borders and with ties in the nnf."""
    from pcst_prep import craft

    nnf, _ = match_patches(noisy_burst, 2, p, 2)
    nnf[::3, ::2] = (0, 0, 0)  # ties: many patches pasted from one place
    extended = extend_frames(noisy_burst, p)
    h, w = noisy_burst.shape[1:3]
    rng = np.random.default_rng(p)
    for offset in [(0, 0), (p - 1, p - 1), tuple(rng.integers(p, size=2))]:
        full = craft_target_loop(noisy_burst, nnf, p, offset)
        for rows, cols in [(slice(0, 9), slice(0, 9)), (slice(h - 9, h), slice(w - 11, w)),
                           (slice(3, 20), slice(7, 40)), (slice(None), slice(None))]:
            np.testing.assert_array_equal(
                craft_region(extended, nnf, p, offset, rows, cols), full[rows, cols])
        monkeypatch.setattr(craft, "BLOCK_COPIES", 0)  # the same regions through the gather
        np.testing.assert_array_equal(
            craft_region(extended, nnf, p, offset, slice(3, 20), slice(7, 40)), full[3:20, 7:40])
        monkeypatch.undo()


def test_bad_offset_and_nnf(noisy_burst):
    nnf, _ = match_patches(noisy_burst, 2, 4, 1)
    with pytest.raises(InputError, match="offset"):
        craft_target(noisy_burst, nnf, 4, (4, 0))
    with pytest.raises(InputError, match="nnf has shape"):
        craft_target(noisy_burst, nnf, 5, (0, 0))
