"""match_patches against a plain NumPy exhaustive search: borders, ties, M=3, grayscale."""

import numba
import numpy as np
import pytest

from pcst_prep import InputError, match_patches
from reference import exhaustive_distances, nnf_distance

CASES = [
    # M, H, W, C, p, R, center
    (3, 11, 13, 3, 4, 3, 1),     # M=3, RGB
    (5, 9, 10, 1, 3, 2, 2),      # grayscale
    (3, 8, 8, 1, 8, 2, 0),       # patch as large as the frame, center first
    (3, 12, 30, 3, 5, 9, 2),     # radius larger than the frame height: border handling
    (7, 10, 9, 3, 1, 4, 3),      # p = 1 (pixel matching), M = 7
    (3, 6, 7, 3, 3, 0, 1),       # R = 0: only the co-located patch
]


@pytest.mark.parametrize("m, h, w, c, p, r, center", CASES)
def test_exact_against_numpy_exhaustive_search(rng, m, h, w, c, p, r, center):
    burst = rng.random((m, h, w, c), dtype=np.float32)
    nnf, distance = match_patches(burst, center, p, r)
    assert nnf.shape == (h + p - 1, w + p - 1, 3) and nnf.dtype == np.int16
    assert distance.shape == (h + p - 1, w + p - 1) and distance.dtype == np.float32

    everything = exhaustive_distances(burst, center, p, r)
    true_min = everything.min(axis=(0, 1, 2))
    # float32 running sums: the error scales with the largest sums held (each term <= C)
    tolerance = 1e-6 * p * p * c
    # the reported distance is the minimum, and the chosen candidate really has it
    np.testing.assert_allclose(distance, true_min, rtol=0, atol=tolerance)
    np.testing.assert_allclose(nnf_distance(burst, center, nnf, p), true_min, rtol=0, atol=tolerance)
    # candidates are valid: other frame, within the radius, inside the extended frame
    t, dy, dx = nnf[..., 0], nnf[..., 1], nnf[..., 2]
    assert not np.any(t == center) and np.all((t >= 0) & (t < m))
    assert np.abs(dy).max() <= r and np.abs(dx).max() <= r
    u, v = np.indices(distance.shape)
    assert np.all((u + dy >= 0) & (u + dy < h + p - 1) & (v + dx >= 0) & (v + dx < w + p - 1))


def test_ties_go_to_the_first_candidate_in_search_order():
    # A constant burst: every candidate ties at distance 0.
    burst = np.full((5, 6, 7, 3), 0.5, np.float32)
    nnf, distance = match_patches(burst, 3, 3, 2)
    assert np.all(distance == 0)
    v = np.indices(distance.shape)[1]
    # search order: dy = 0 first, then the nearest frame (2 before 4), then the smallest valid dx
    assert np.all(nnf[..., 0] == 2)
    assert np.all(nnf[..., 1] == 0)
    np.testing.assert_array_equal(nnf[..., 2], np.maximum(-2, -v))


def test_duplicate_frames_tie_between_frames(rng):
    frame = rng.random((9, 10, 1), dtype=np.float32)
    other = rng.random((9, 10, 1), dtype=np.float32)
    burst = np.stack([other, frame, frame, frame])  # frames 2 and 3 copy the center
    nnf, distance = match_patches(burst, 1, 3, 1)
    assert np.all(distance == 0)
    assert np.all(nnf[..., 0] == 2)  # the first of the two tied frames
    assert np.all(nnf[..., 1:] == 0)


def test_ties_prefer_the_smaller_vertical_shift_over_the_nearer_frame(rng):
    # Frame 1 (next to the center) matches exactly one row down, frame 0 (two away) exactly in
    # place: dy comes before the frame in the search order.
    # Small integers: every running sum is exact in float32, so the ties are exact too.
    frame, other = rng.integers(0, 4, (2, 12, 11, 3)).astype(np.float32)
    burst = np.stack([frame, np.roll(frame, 1, axis=0), frame, other])
    nnf, distance = match_patches(burst, 2, 3, 2)
    assert np.all(distance == 0)
    assert np.all(nnf[..., 0] == 0) and np.all(nnf[..., 1:] == 0)


def test_recovers_known_shifts_of_a_real_image(demo_frames):
    image = demo_frames[0]
    h, w, y0, x0 = 48, 64, 60, 120
    shifts = {0: (3, -5), 2: (-4, 2)}  # frame t shows the scene moved by (sy, sx)

    def crop(sy, sx):
        return image[y0 - sy:y0 - sy + h, x0 - sx:x0 - sx + w]

    burst = np.stack([crop(*shifts[0]), crop(0, 0), crop(*shifts[2])])
    p, r = 7, 6
    nnf, distance = match_patches(burst, 1, p, r)
    pad = p - 1
    # interior queries whose patch and shifted match both stay inside the original frames
    margin = pad + 6
    inner = (slice(margin, h - 6), slice(margin, w - 6))
    assert np.abs(distance[inner]).max() < 1e-5  # exact copies, up to float32 rounding
    t = nnf[inner][..., 0]
    for frame, (sy, sx) in shifts.items():
        chosen = t == frame
        assert chosen.any()
        assert np.all(nnf[inner][..., 1][chosen] == sy)
        assert np.all(nnf[inner][..., 2][chosen] == sx)


def test_result_does_not_depend_on_thread_count(rng):
    burst = rng.random((5, 20, 24, 3), dtype=np.float32)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = match_patches(burst, 2, 5, 4)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        multi = match_patches(burst, 2, 5, 4)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(single[0], multi[0])
    np.testing.assert_array_equal(single[1], multi[1])


@pytest.mark.parametrize("lanes", [1, 40, 10 ** 6])  # frames per item: 1, 3 (13 x 3 <= 40), 6
def test_frames_sharing_items_does_not_change_the_result(rng, monkeypatch, lanes):
    from pcst_prep import matching

    burst = rng.random((7, 14, 17, 3), dtype=np.float32)
    burst[4] = burst[3]  # exact ties across frames and shifts
    burst[5] = np.roll(burst[3], 1, axis=1)
    expected = match_patches(burst, 3, 4, 6)
    monkeypatch.setattr(matching, "MAX_SHARED_LANES", lanes)
    assert len(matching._shared_sets(6, 13)) == {1: 6, 40: 2, 10 ** 6: 1}[lanes]
    nnf, distance = match_patches(burst, 3, 4, 6)
    np.testing.assert_array_equal(distance, expected[1])
    np.testing.assert_array_equal(nnf, expected[0])


@pytest.mark.parametrize(
    "shape, center, p, r, message",
    [
        ((3, 8, 8, 1), 1, 9, 2, "smaller than the patch"),
        ((3, 8, 8), 1, 3, 2, "4-D array"),
        ((1, 8, 8, 1), 0, 3, 2, "at least 2 frames"),
        ((3, 8, 8, 1), 3, 3, 2, "center must be"),
        ((3, 8, 8, 1), 1, 3, -1, "search_radius"),
    ],
)
def test_bad_arguments(shape, center, p, r, message):
    with pytest.raises(InputError, match=message):
        match_patches(np.zeros(shape, np.float32), center, p, r)


def test_nan_is_refused():
    burst = np.zeros((3, 8, 8, 1), np.float32)
    burst[0, 1, 1, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        match_patches(burst, 1, 3, 1)


@pytest.mark.parametrize("m, h, w, c, p, r, big, step, center", [
    (3, 12, 30, 3, 4, 2, 9, 3, 1),    # grid wider than the frame height
    (4, 10, 14, 1, 3, 1, 7, 2, 3),    # grayscale, center last, even step
    (3, 9, 11, 3, 3, 0, 6, 4, 0),     # no dense window beyond dx = dy = 0
])
def test_grid_search_is_exact_over_its_candidate_set(rng, m, h, w, c, p, r, big, step, center):
    from pcst_prep.matching import search_patches

    burst = rng.random((m, h, w, c), dtype=np.float32)
    nnf, distance = search_patches(burst, center, p, r, search="grid", large_radius=big,
                                   grid_step=step)
    everything = exhaustive_distances(burst, center, p, big)  # [M, dy, dx, u, v]
    shifts = np.arange(-big, big + 1)
    on_grid = (shifts % step == 0)
    dense = np.abs(shifts) <= r
    allowed = (on_grid[:, None] & on_grid[None, :]) | (dense[:, None] & dense[None, :])
    true_min = np.where(allowed[None, :, :, None, None], everything, np.inf).min(axis=(0, 1, 2))
    tolerance = 1e-6 * p * p * c
    np.testing.assert_allclose(distance, true_min, rtol=0, atol=tolerance)
    np.testing.assert_allclose(nnf_distance(burst, center, nnf, p), true_min, rtol=0,
                               atol=tolerance)
    dy, dx = nnf[..., 1], nnf[..., 2]
    in_dense = (np.abs(dy) <= r) & (np.abs(dx) <= r)
    assert np.all(in_dense | ((dy % step == 0) & (dx % step == 0)))
    assert np.abs(nnf[..., 1:]).max() <= big


def test_grid_with_step_one_is_the_dense_search_of_the_large_radius(rng):
    from pcst_prep.matching import search_patches

    burst = rng.random((3, 10, 12, 3), dtype=np.float32)
    nnf, distance = search_patches(burst, 1, 3, 1, search="grid", large_radius=5, grid_step=1)
    dense_nnf, dense_distance = match_patches(burst, 1, 3, 5)
    np.testing.assert_allclose(distance, dense_distance, atol=1e-5)


def test_pyramid_finds_large_motion_and_is_never_worse_than_dense(demo_frames):
    from pcst_prep.matching import search_patches

    # real frames moved by a large global shift (beyond the dense radius) plus a little noise
    rng = np.random.default_rng(0)
    shifts = [(-18, -40), (0, 0), (14, 44)]
    canvas = demo_frames[0]
    burst = np.stack([canvas[40 + sy:136 + sy, 60 + sx:252 + sx] for sy, sx in shifts])
    burst = burst + rng.normal(0, 0.02, burst.shape).astype(np.float32)
    nnf, distance = search_patches(burst, 1, 9, 4, search="pyramid", large_radius=60)
    _, dense_distance = match_patches(burst, 1, 9, 4)
    assert np.all(distance <= dense_distance)
    np.testing.assert_allclose(nnf_distance(burst, 1, nnf, 9), distance, rtol=1e-4, atol=1e-3)
    # away from the borders, the true shift of the chosen frame is found almost everywhere
    inner = (slice(30, 70), slice(60, 140))
    t, dy, dx = (nnf[inner + (q,)] for q in range(3))
    # frame t holds the center's content displaced by -shift
    expected_dy = np.where(t == 0, 18, -14)
    expected_dx = np.where(t == 0, 40, -44)
    assert np.mean((dy == expected_dy) & (dx == expected_dx)) > 0.95


def test_bad_search_arguments(rng):
    from pcst_prep.matching import search_patches

    burst = rng.random((3, 10, 12, 3), dtype=np.float32)
    with pytest.raises(InputError, match="search must be one of"):
        search_patches(burst, 1, 3, 1, search="fast")
    with pytest.raises(InputError, match="grid_step"):
        search_patches(burst, 1, 3, 1, search="grid", large_radius=4, grid_step=0)


def test_frequent_displacements_match_a_plain_numpy_count(rng):
    from pcst_prep.matching import _frequent

    # few distinct displacements, many ties in count; negative and positive shifts
    nnf = np.zeros((30, 40, 3), np.int16)
    nnf[..., 1:] = rng.integers(-6, 7, (30, 40, 2)) * rng.integers(0, 2, (30, 40, 1))
    values, counts = np.unique(nnf[..., 1:].reshape(-1, 2), axis=0, return_counts=True)
    order = np.lexsort((np.abs(values).sum(axis=1), -counts))  # stable: then (dy, dx)
    for keep in (1, 5, 16, 1000):
        np.testing.assert_array_equal(_frequent(nnf, keep), values[order[:keep]])


def test_filled_runs_keep_every_candidate_and_fill_the_kernels_lanes(rng):
    from pcst_prep._match_kernel import LANES
    from pcst_prep.matching import _fill_lanes, _runs

    limit = 40
    displacements = np.unique(rng.integers(-limit, limit + 1, (60, 2)), axis=0)
    displacements[:3, 1] = [-limit, limit, limit - 1]  # runs at the limit cannot grow outwards
    filled = _fill_lanes(displacements, limit)
    as_set = {tuple(d) for d in filled.tolist()}
    assert {tuple(d) for d in displacements.tolist()} <= as_set
    assert len(as_set) == len(filled) and np.abs(filled[:, 1]).max() <= limit
    assert set(filled[:, 0].tolist()) == set(displacements[:, 0].tolist())
    # a run grows to a multiple of the lanes unless it spans the whole [-limit, limit]
    assert all(n % LANES == 0 or n == 2 * limit + 1 for _, _, _, n in _runs(filled, 0))
    assert len(_fill_lanes(np.zeros((0, 2), np.int64), limit)) == 0
