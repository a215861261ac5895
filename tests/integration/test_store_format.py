"""The normalised store (format 2) against the copying one (format 1): the same settings give
the same training tiles, to the bit, whether the build stored them or the trainer crafts them."""

import numpy as np
import pytest
import zarr

from pcst_prep import store as zstore
from pcst_prep.bursts import read_frames
from pcst_prep.plan import plan_bursts
from pcst_prep.stages import load_burst
from pcst_prep.statistics import TileFilter
from pcst_train.data import BurstTiles, StoreDataset, clean_pairs

pytestmark = pytest.mark.slow


def test_crafted_tiles_are_the_stored_ones_to_the_bit(tiny_store, tiny_store_v1):
    v1, v2 = zstore.open_store(tiny_store_v1), zstore.open_store(tiny_store)
    assert (zstore.format_version(v1), zstore.format_version(v2)) == (1, 2)
    bursts, positions = v1["samples/burst"][...], v1["samples/position"][...]
    offsets, valid = v1["samples/offsets"][...], v1["samples/valid"][...]
    inputs, targets, clean = (v1[f"samples/{n}"][...] for n in ("input", "targets", "clean"))
    # the same tiles, in the same order
    table = zstore.burst_table(v2)
    np.testing.assert_array_equal(np.repeat(np.arange(len(table["source"])),
                                            np.diff(table["tiles"])), bursts)
    np.testing.assert_array_equal(
        np.concatenate([zstore.read_tiles(v2, b)["position"] for b in range(len(table["source"]))]),
        positions)
    loaded = {}
    compared = 0
    for i, burst in enumerate(bursts):
        if burst not in loaded:
            loaded[burst] = BurstTiles(v2, table, int(burst), clean=True)
        tiles = loaded[burst]
        np.testing.assert_array_equal(tiles.input(i), inputs[i])
        np.testing.assert_array_equal(tiles.clean(i), clean[i])
        kept = {tuple(o) for o in tiles.offsets(i)}
        assert 1 <= len(kept) and valid[i].sum() == min(len(kept), valid.shape[1])
        for j in np.nonzero(valid[i])[0]:
            assert tuple(offsets[i, j]) in kept  # format 1 chose K of the kept offsets
            np.testing.assert_array_equal(tiles.target(i, offsets[i, j]), targets[i, j])
            compared += 1
    assert compared == valid.sum() > 100


def test_the_store_holds_each_frame_once_as_the_input_holds_it(tiny_store, tiny_input,
                                                                tiny_config):
    group = zstore.open_store(tiny_store)
    plan = plan_bursts(tiny_input, tiny_config)
    for source, info in enumerate(plan.sources):
        frames = group[f"sources/{source:04d}/frames"]
        assert frames.dtype == np.uint16  # the fixture's 16-bit PNGs, not widened to float
        assert frames.shape == (info["n_frames"], info["height"], info["width"], 3)
        assert frames.chunks == (1,) + frames.shape[1:]
        used = sorted({f for b in plan.bursts if b.source == source for f in b.frame_indices})
        written = group[f"sources/{source:04d}/written"][...]
        assert list(np.nonzero(written)[0]) == used
        sequence = next(b.sequence for b in plan.bursts if b.source == source)
        np.testing.assert_array_equal(frames.get_orthogonal_selection((np.array(used),)),
                                      read_frames(sequence, used, raw=True))
    # the noisy frames are what the build matched on: one noise per frame, whichever burst
    for burst in plan.bursts:
        noisy, clean = load_burst(burst, tiny_config)
        np.testing.assert_array_equal(
            zstore.read_frames(group, burst.source, burst.frame_indices, noisy=True), noisy)
        np.testing.assert_array_equal(
            zstore.read_frames(group, burst.source, burst.frame_indices, noisy=False), clean)


def test_kept_offsets_are_the_filter_applied_to_the_stored_scores(tiny_store, tiny_config):
    group = zarr.open_group(str(tiny_store), mode="r")
    keep = TileFilter.from_attrs(group.attrs["filter"]).keeps(group["stats/s_yr"][...],
                                                              group["stats/r_mean"][...])
    starts, n_tiles = group["bursts/tiles"][...], group["bursts/n_tiles"][...]
    total = 0
    for burst in range(len(n_tiles)):
        positions = group[f"tiles/{burst:06d}/position"][...]
        kept = group[f"tiles/{burst:06d}/kept"][...]
        assert len(positions) == len(kept) == starts[burst + 1] - starts[burst]
        n_j = n_tiles[burst, 1]
        index = positions[:, 0] // tiny_config.tile_stride * n_j \
            + positions[:, 1] // tiny_config.tile_stride
        with_kept = np.nonzero(keep[burst].any(axis=0))[0]
        np.testing.assert_array_equal(index, with_kept)  # every tile with a kept offset, in order
        np.testing.assert_array_equal(kept, keep[burst][:, with_kept].T)
        total += kept.sum()
    assert total == group.attrs["filter"]["kept_pairs"] == group.attrs["counts"]["valid_targets"]


def test_training_draws_every_kept_offset_over_epochs(tiny_store):
    """Each visit of a tile draws one of its kept offsets at random, not a fixed K."""
    dataset = StoreDataset(tiny_store, seed=0, augment=False)
    group = zstore.open_store(tiny_store)
    tiles = BurstTiles(group, zstore.burst_table(group), 0)
    first = tiles.rows[0]
    wanted = {tiles.target(first, o).tobytes(): tuple(o) for o in tiles.offsets(first)}
    r_center = np.float32(zstore.read_filter(group).r_center)
    seen = set()
    for epoch in range(40):
        dataset.set_epoch(epoch)
        for x, y in dataset:
            x = x.numpy().transpose(1, 2, 0)
            if np.array_equal(x, tiles.input(first)):
                target = y.numpy().transpose(1, 2, 0) + r_center
                match = [o for key, o in wanted.items()
                         if np.allclose(np.frombuffer(key, np.float32).reshape(target.shape),
                                        target, atol=1e-6)]
                assert match
                seen.add(match[0])
    assert len(seen) > 3 * 3  # more than the K = 3 a format-1 store keeps


def test_both_formats_give_the_same_pairs_to_a_trainer_without_augmentation(tiny_store,
                                                                            tiny_store_v1):
    """With clean targets (no offset drawn) the two formats stream the same multiset."""
    def pairs(path):
        dataset = StoreDataset(path, seed=1, augment=False, clean_targets=True)
        return sorted((x.numpy().tobytes(), y.numpy().tobytes()) for x, y in dataset)

    assert pairs(tiny_store) == pairs(tiny_store_v1)
    for a, b in zip(clean_pairs(tiny_store, limit=10), clean_pairs(tiny_store_v1, limit=10)):
        assert np.array_equal(a.numpy(), b.numpy())


def test_the_normalised_store_is_smaller(tiny_store, tiny_store_v1):
    assert zstore.store_size(tiny_store) < zstore.store_size(tiny_store_v1)


def test_crafting_while_streaming_imports_neither_numba_nor_dask(tiny_store):
    import subprocess
    import sys

    code = ("import sys; from pcst_train.data import StoreDataset, clean_pairs; "
            f"n = sum(1 for _ in StoreDataset({str(tiny_store)!r})); "
            f"clean_pairs({str(tiny_store)!r}); "
            "print(n > 0, sorted(m for m in ('numba', 'dask', 'distributed') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True []"
