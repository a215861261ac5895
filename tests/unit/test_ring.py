"""Ring matching (validation targets) against plain loops: borders, ties, holes, threads."""

import numba
import numpy as np
import pytest

from pcst_prep import InputError
from pcst_prep.config import BuildConfig
from pcst_prep.matching import ring_match, ring_target
from pcst_prep.targets import target_kind
from reference import ring_match_loop

CASES = [
    # M, H, W, C, p, hole, R
    (3, 9, 11, 1, 5, 1, 2),     # grayscale, a one-pixel hole
    (4, 8, 7, 3, 5, 3, 3),      # RGB, radius near the frame size: border handling
    (3, 7, 9, 1, 3, 0, 2),      # no hole: the plain centred window
    (3, 8, 9, 2, 7, 5, 4),      # a wide hole
    (2, 6, 12, 3, 3, 1, 0),     # R = 0: only the co-located pixel, M = 2
]


@pytest.mark.parametrize("m, h, w, c, p, hole, r", CASES)
@pytest.mark.parametrize("quantised", [False, True])  # values on a grid of 0.5: many ties
def test_ring_match_against_plain_loops(rng, m, h, w, c, p, hole, r, quantised):
    burst = rng.random((m, h, w, c), dtype=np.float32)
    if quantised:
        burst = np.round(burst * 2) / 2
    for center in range(m):
        match = ring_match(burst, center, p, hole, r)
        assert match.dtype == np.int16 and match.shape == (h, w, 3)
        np.testing.assert_array_equal(match, ring_match_loop(burst, center, p, hole, r))


@pytest.mark.parametrize("frames", [[0], [3, 1], [0, 1, 3]])
def test_ring_match_of_chosen_frames_and_its_distance_against_plain_loops(rng, frames):
    # the match restricted to some frames (ties to the first listed), and its distance
    burst = np.round(rng.random((4, 9, 10, 3), dtype=np.float32) * 2) / 2
    match, distance = ring_match(burst, 2, 5, 3, 3, frames=frames, return_distance=True)
    expected, expected_distance = ring_match_loop(burst, 2, 5, 3, 3, frames=frames,
                                                  return_distance=True)
    np.testing.assert_array_equal(match, expected)
    assert distance.dtype == np.float32
    np.testing.assert_allclose(distance, expected_distance, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ring_match(burst, 2, 5, 3, 3, frames=frames), match)
    with pytest.raises(InputError, match="other than the center"):
        ring_match(burst, 2, 5, 3, 3, frames=[2])


def test_the_matched_pixel_never_enters_the_distance(rng):
    # Frame 1 is frame 0 moved by (1, 2) with every pixel but one changed in a 1-pixel hole:
    # the ring still finds the shift, and the target copies the changed pixel unchanged.
    frame = rng.random((16, 18, 1), dtype=np.float32)
    moved = np.roll(frame, (1, 2), axis=(0, 1))
    burst = np.stack([frame, moved, rng.random((16, 18, 1), dtype=np.float32)])
    burst[1, 9, 10] = 5.0  # pixel (8, 8) of frame 0 moved
    match = ring_match(burst, 0, 5, 1, 3)
    assert tuple(match[8, 8]) == (1, 1, 2)
    assert ring_target(burst, match)[8, 8, 0] == 5.0
    # the plain centred window (no hole) would not take it: the changed pixel costs too much
    assert tuple(ring_match(burst, 0, 5, 0, 3)[8, 8]) != (1, 1, 2)


def test_ring_target_is_the_matched_pixels(rng):
    burst = rng.random((3, 10, 12, 3), dtype=np.float32)
    match = ring_match(burst, 1, 5, 3, 2)
    target = ring_target(burst, match)
    u, v = np.indices((10, 12))
    for t in (0, 2):
        chosen = match[..., 0] == t
        expected = burst[t, (u + match[..., 1])[chosen], (v + match[..., 2])[chosen]]
        np.testing.assert_array_equal(target[chosen], expected)
    # the validation target kind crafts the same pixels over any region
    config = BuildConfig(validation_targets="ring", validation_patch_size=5, validation_hole=3,
                         search_radius=2)
    kind = target_kind("ring")
    assert len(kind.offsets(config)) == 1
    region = kind.craft(kind.prepare(burst, 1, config), match, config, (0, 0), slice(2, 9),
                        slice(3, 11))
    np.testing.assert_array_equal(region, target[2:9, 3:11])


def test_result_does_not_depend_on_thread_count(rng):
    burst = np.round(rng.random((5, 14, 16, 3), dtype=np.float32) * 4) / 4
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = ring_match(burst, 2, 7, 3, 4)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        multi = ring_match(burst, 2, 7, 3, 4)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(single, multi)


@pytest.mark.parametrize("p, hole, message", [(4, 1, "odd patch size"), (5, 2, "hole must be"),
                                              (5, 5, "hole must be"), (5, -1, "hole must be")])
def test_bad_arguments(rng, p, hole, message):
    with pytest.raises(InputError, match=message):
        ring_match(rng.random((3, 9, 9, 1), dtype=np.float32), 1, p, hole, 2)


@pytest.mark.parametrize("rows, cols", [(slice(0, 5), slice(0, 7)), (slice(4, 11), slice(6, 17)),
                                        (slice(9, 14), slice(15, 20)), (slice(7, 8), slice(3, 4))])
def test_a_region_is_matched_as_in_the_whole_frame(rng, rows, cols):
    # regions at the corners, inside, and one pixel: the crop with its margin changes nothing
    burst = np.round(rng.random((4, 14, 20, 3), dtype=np.float32) * 4) / 4
    whole = ring_match(burst, 1, 7, 3, 3)
    np.testing.assert_array_equal(ring_match(burst, 1, 7, 3, 3, rows, cols), whole[rows, cols])
