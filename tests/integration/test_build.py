"""End-to-end builds of tiny stores, checked against the core functions."""

import os

import numpy as np
import pytest
import zarr

from pcst_prep import InputError, choose_s_min, match_patches
from pcst_prep.matching import extend_frames
from pcst_prep.build import build
from pcst_prep.plan import plan_bursts
from pcst_prep.stages import load_burst
from pcst_prep.statistics import TileFilter, offset_tile_stats
from pcst_prep.targets import all_offsets, craft_region

from helpers import assert_same_store

pytestmark = pytest.mark.slow


def test_store_matches_the_core_functions(tiny_store_v1, tiny_input, tiny_config):
    """Format 1, whose stage 3 copies tiles (test_store_format.py checks that format 2's
    crafted tiles are these, to the bit)."""
    config = tiny_config
    group = zarr.open_group(str(tiny_store_v1), mode="r")
    assert group.attrs["status"] == "complete"
    plan = plan_bursts(tiny_input, config)
    records = plan.bursts
    assert len(records) == 5 and plan.channels == 3

    # stage 1: the stored scores are offset_tile_stats of the same noisy burst
    record = records[3]
    noisy, clean = load_burst(record, config)
    nnf, _ = match_patches(noisy, record.center, config.patch_size, config.search_radius)
    np.testing.assert_array_equal(group[f"nnf/{record.index:06d}"][...], nnf)
    s_yr, r_mean = offset_tile_stats(extend_frames(noisy, config.patch_size), record.center, nnf,
                                     config.patch_size, all_offsets(config.patch_size),
                                     config.tile_size, config.tile_stride)
    n_tiles = s_yr.shape[1] * s_yr.shape[2]
    np.testing.assert_allclose(group["stats/s_yr"][3, :, :n_tiles], s_yr.reshape(49, -1), rtol=1e-6)
    assert np.isnan(group["stats/s_yr"][3, :, n_tiles:]).all()

    # stage 2: s_min is the centering rule over every scored pair
    every = group["stats/s_yr"][...]
    every = every[np.isfinite(every)]
    filter_ = group.attrs["filter"]
    assert filter_["scored_pairs"] == every.size
    assert np.isclose(filter_["s_min"], choose_s_min(every, bins=config.bins), rtol=1e-6)
    keep = TileFilter.from_attrs(filter_).keeps(group["stats/s_yr"][...],
                                                group["stats/r_mean"][...])
    assert filter_["kept_pairs"] == keep.sum()

    # stage 3: inputs are crops of the noisy center, targets are crafted at the stored offsets
    bursts = group["samples/burst"][...]
    positions = group["samples/position"][...]
    offsets = group["samples/offsets"][...]
    valid = group["samples/valid"][...]
    extended = extend_frames(noisy, config.patch_size)
    mine = np.nonzero(bursts == 3)[0]
    assert mine.size > 0
    tiles_with_kept = keep[3][:, :n_tiles].any(axis=0).sum()
    assert mine.size == tiles_with_kept
    for i in mine:
        y, x = positions[i]
        rows, cols = slice(y, y + 20), slice(x, x + 20)
        np.testing.assert_array_equal(group["samples/input"][i], noisy[record.center, rows, cols])
        np.testing.assert_array_equal(group["samples/clean"][i], clean[record.center, rows, cols])
        tile = (y // 12) * s_yr.shape[2] + x // 12
        n_kept = keep[3][:, tile].sum()
        assert valid[i].sum() == min(3, n_kept)
        for j in np.nonzero(valid[i])[0]:
            offset = tuple(offsets[i, j])
            assert keep[3][offset[0] * 7 + offset[1], tile]
            np.testing.assert_array_equal(
                group["samples/targets"][i, j], craft_region(extended, nnf, 7, offset, rows, cols))
        assert np.isnan(group["samples/targets"][i][~valid[i]]).all()


def test_same_store_with_a_two_process_cluster(tiny_store, tiny_input, tiny_config, tmp_path):
    other = tmp_path / "two_workers.zarr"
    build(tiny_input, other, tiny_config, workers=2, progress=False)
    assert_same_store(tiny_store, other)


def test_same_store_through_a_scheduler_address(tiny_store, tiny_input, tiny_config, tmp_path):
    from distributed import LocalCluster

    other = tmp_path / "scheduler.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        build(tiny_input, other, tiny_config, scheduler=cluster.scheduler_address,
              progress=False)
    assert_same_store(tiny_store, other)


def test_unreachable_scheduler(tiny_input, tiny_config, tmp_path):
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        build(tiny_input, tmp_path / "x.zarr", tiny_config, scheduler="tcp://127.0.0.1:9",
              progress=False)
    assert not (tmp_path / "x.zarr").exists()


def test_rebuild_with_same_settings_resumes_and_changes_nothing(store_copy, tiny_store,
                                                                tiny_input, tiny_config):
    summary = build(tiny_input, store_copy, tiny_config, progress=False)
    assert summary.resumed
    assert_same_store(tiny_store, store_copy)


def test_interrupted_materialisation_resumes_to_the_same_store(tiny_store_v1, tiny_input,
                                                              tiny_config, tmp_path):
    # Format 1, as if killed during stage 3: one chunk half-written, its flag not set.
    import shutil

    store_copy = tmp_path / "copy_v1.zarr"
    shutil.copytree(tiny_store_v1, store_copy)
    group = zarr.open_group(str(store_copy), mode="r+")
    group["samples/materialised"][0] = False
    group["samples/input"][:10] = 0.0
    group["samples/targets"][:5] = -1.0
    group.attrs["status"] = "building"
    build(tiny_input, store_copy, tiny_config.replace(store_format=1), progress=False)
    assert_same_store(tiny_store_v1, store_copy)


def test_interrupted_frame_storing_resumes_to_the_same_store(store_copy, tiny_store,
                                                             tiny_input, tiny_config):
    # Format 2, as if killed during stage 3: two frames half-written, their flags not set.
    group = zarr.open_group(str(store_copy), mode="r+")
    for name in ("frames", "noisy"):
        group[f"sources/0000/{name}"][1:3] = 0
    group["sources/0000/written"][1:3] = False
    group.attrs["status"] = "building"
    build(tiny_input, store_copy, tiny_config, progress=False)
    assert_same_store(tiny_store, store_copy)


def test_interrupted_scoring_resumes_to_the_same_store(store_copy, tiny_store, tiny_input,
                                                       tiny_config):
    # As if killed during stage 1: two bursts unscored, no filter, no tiles nor frames yet.
    group = zarr.open_group(str(store_copy), mode="r+")
    group["bursts/scored"][1:3] = False
    group["stats/s_yr"][1] = 5.0
    del group["tiles"]
    del group["sources"]
    del group["bursts/tiles"]
    group.attrs.update({"status": "building"})
    del group.attrs["filter"]
    build(tiny_input, store_copy, tiny_config, progress=False)
    assert_same_store(tiny_store, store_copy)


def test_mismatched_resume_is_refused_unless_overwrite(store_copy, tiny_input, tiny_config):
    other = tiny_config.replace(patch_size=5)
    with pytest.raises(InputError,
                       match=r"different patch_size \(stored 7, now 5\); use --overwrite"):
        build(tiny_input, store_copy, other, progress=False)
    summary = build(tiny_input, store_copy, other, overwrite=True, progress=False)
    assert not summary.resumed
    assert zarr.open_group(str(store_copy), mode="r")["stats/s_yr"].shape[1] == 25


def test_without_keep_nnf_format_1_drops_the_nnf(tiny_input, tiny_config, tmp_path):
    config = tiny_config.replace(keep_nnf=False, noise="none")
    build(tiny_input, tmp_path / "v1.zarr", config.replace(store_format=1), progress=False)
    group = zarr.open_group(str(tmp_path / "v1.zarr"), mode="r")
    assert "nnf" not in group and "samples/clean" not in group
    assert group["samples/input"].shape[0] > 0
    # format 2 crafts from the nnf: kept; real noise stores no noisy copy of the frames
    build(tiny_input, tmp_path / "v2.zarr", config, progress=False)
    group = zarr.open_group(str(tmp_path / "v2.zarr"), mode="r")
    assert len(list(group["nnf"].arrays())) == group["bursts/source"].shape[0]
    assert "sources/0000/noisy" not in group and "sources/0000/frames" in group


def test_without_the_filter_every_scored_pair_is_kept(tiny_store, tiny_input, tiny_config,
                                                      tmp_path):
    path = tmp_path / "nofilter.zarr"
    build(tiny_input, path, tiny_config.replace(filter=False), progress=False)
    group = zarr.open_group(str(path), mode="r")
    filtered = zarr.open_group(str(tiny_store), mode="r")
    filter_ = group.attrs["filter"]
    assert filter_["kept_pairs"] == filter_["scored_pairs"] == filtered.attrs["filter"][
        "scored_pairs"]
    assert filtered.attrs["filter"]["kept_pairs"] < filter_["kept_pairs"]
    # same matching and scores; every tile of every burst becomes a sample
    np.testing.assert_array_equal(group["stats/s_yr"][...], filtered["stats/s_yr"][...])
    n_tiles = group["bursts/n_tiles"][...]
    assert group["bursts/tiles"][-1] == int(np.prod(n_tiles, axis=1).sum())
    assert all(group[f"tiles/{b:06d}/kept"][...].all() for b in range(len(n_tiles)))
    # the report draws it without a threshold line far off the data
    from pcst_prep.report import format_histogram, plot_histogram, s_yr_histogram

    histogram = s_yr_histogram(group)
    assert histogram.kept == histogram.scored
    assert "s_min" in format_histogram(histogram)
    png = plot_histogram(histogram, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_neighbour_targets_are_the_next_noisy_frame(tiny_input, tiny_config, tmp_path):
    path = tmp_path / "n2n.zarr"
    config = tiny_config.replace(filter=False, targets="neighbour", keep_nnf=False,
                                 store_format=1)
    build(tiny_input, path, config, progress=False)
    group = zarr.open_group(str(path), mode="r")
    assert "nnf" not in group and group["stats/s_yr"].shape[1] == 1
    records = plan_bursts(tiny_input, config).bursts
    bursts = group["samples/burst"][...]
    positions = group["samples/position"][...]
    valid = group["samples/valid"][...]
    assert (valid.sum(axis=1) == 1).all() and valid[:, 0].all()
    for index in (0, 4):
        noisy, clean = load_burst(records[index], config)
        center = records[index].center
        for i in np.nonzero(bursts == index)[0][:3]:
            y, x = positions[i]
            rows, cols = slice(y, y + 20), slice(x, x + 20)
            np.testing.assert_array_equal(group["samples/input"][i], noisy[center, rows, cols])
            np.testing.assert_array_equal(group["samples/targets"][i, 0],
                                          noisy[center + 1, rows, cols])
            np.testing.assert_array_equal(group["samples/clean"][i], clean[center, rows, cols])


def test_unknown_target_kind_is_refused():
    from pcst_prep.config import BuildConfig

    with pytest.raises(InputError, match="targets must be one of"):
        BuildConfig(targets="nearest")
    with pytest.raises(InputError, match="targets 'neighbour' needs store_format 1"):
        BuildConfig(targets="neighbour")
    with pytest.raises(InputError, match="store_format must be 1 or 2, got 3"):
        BuildConfig(store_format=3)


@pytest.mark.parametrize("search", ["grid", "pyramid"])
def test_large_motion_searches_feed_the_build(tiny_input, tiny_config, tmp_path, search):
    from pcst_prep.matching import search_patches

    config = tiny_config.replace(search=search, large_radius=9, grid_step=2)
    path = tmp_path / f"{search}.zarr"
    build(tiny_input, path, config, progress=False)
    group = zarr.open_group(str(path), mode="r")
    records = plan_bursts(tiny_input, config).bursts
    noisy, _ = load_burst(records[1], config)
    nnf, distance = search_patches(noisy, records[1].center, 7, 3, search=search,
                                   large_radius=9, grid_step=2)
    np.testing.assert_array_equal(group["nnf/000001"][...], nnf)
    _, dense = match_patches(noisy, records[1].center, 7, 3)
    assert np.all(distance <= dense) and np.abs(nnf[..., 1:]).max() > 3


def test_stage3_reuses_a_burst_until_its_files_change(tiny_input, tiny_config, tmp_path):
    import shutil

    from pcst_prep import stages

    folder = tmp_path / "input"
    shutil.copytree(tiny_input, folder)
    records = plan_bursts(folder, tiny_config).bursts
    first = stages._burst_for_crafting(records[0], tiny_config)
    assert stages._burst_for_crafting(records[0], tiny_config) is first  # no second load
    other = stages._burst_for_crafting(records[1], tiny_config)
    np.testing.assert_array_equal(other[0], load_burst(records[1], tiny_config)[0])
    # a long-lived worker sees a frame file replaced between two builds
    frame = records[0].sequence.frames[records[0].frame_indices[0]]
    stages._burst_for_crafting(records[0], tiny_config)
    replacement = records[0].sequence.frames[records[0].frame_indices[-1]].read_bytes()
    frame.write_bytes(replacement)
    os.utime(frame, ns=(1, 1))  # a modification time of its own, whatever the clock's resolution
    again = stages._burst_for_crafting(records[0], tiny_config)
    np.testing.assert_array_equal(again[0], load_burst(records[0], tiny_config)[0])
    assert not np.array_equal(again[0], first[0])
    stages.forget_cached_burst()


def test_schema_lists_every_array_a_built_store_holds(tiny_store):
    import zarr

    group = zarr.open_group(str(tiny_store), mode="r")
    from pcst_prep import store

    documented = {spec.name.split("/<")[0] for spec in store.ARRAYS}
    names = {name for name, node in group.members(max_depth=None) if isinstance(node, zarr.Array)}
    undocumented = {n for n in names if n not in documented and n.split("/")[0] not in documented}

    assert names and not undocumented


