"""A damaged store: one line naming the array and the chunk, exit 2, in every command that
reads it; ``pcst-prep check`` lists every damaged part (issue 12.4)."""

import pytest
import zarr

from conftest import PREP, TRAIN, assert_one_line_error, run


def damage_chunk(store, key):
    """Overwrite 40 bytes in the middle of a chunk file: it no longer decompresses."""
    path = store / key
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 40] = b"\xa5" * 40
    path.write_bytes(bytes(data))


def damage_metadata(store, array, text='{"shape": [72, 20'):
    (store / array / "zarr.json").write_text(text)


def unknown_codec(store, array):
    path = store / array / "zarr.json"
    path.write_text(path.read_text().replace('"blosc"', '"lz77-of-the-future"'))


FRAME_CHUNK = "sources/0000/noisy/c/0/0/0/0"


def test_check_says_an_undamaged_store_reads(store_copy):
    result = run(PREP, "check", store_copy, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "every array and chunk reads" in result.stdout


def test_check_lists_every_damaged_chunk_and_array(store_copy):
    damage_chunk(store_copy, FRAME_CHUNK)
    damage_chunk(store_copy, "stats/s_yr/c/1/0/0")
    damage_metadata(store_copy, "tiles/000001/position")

    result = run(PREP, "check", store_copy, "--no-progress")

    assert_one_line_error(result, "3 damaged array(s) or chunk(s)")
    listed = result.stdout.splitlines()
    assert any(line.startswith("sources/0000/noisy: chunk c/0/0/0/0 cannot be read")
               for line in listed)
    assert any(line.startswith("stats/s_yr: chunk c/1/0/0 cannot be read") for line in listed)
    assert any(line.startswith("tiles/000001/position: metadata cannot be read")
               for line in listed)


@pytest.mark.parametrize("workers", [0, 2])
def test_training_on_a_damaged_chunk_names_it_and_leaves_no_run(store_copy, tmp_path, workers):
    for burst in (store_copy / "tiles").glob("0*"):  # whichever burst training reads first
        damage_chunk(store_copy, f"tiles/{burst.name}/kept/c/0/0")
    run_dir = tmp_path / "run"

    result = run(TRAIN, store_copy, "--out", run_dir, "--steps", "4", "--batch-size", "8",
                 "--workers", workers, "--no-progress")

    line = assert_one_line_error(result, "/kept: chunk c/0/0 cannot be read", "pcst-prep check")
    assert "tiles/0000" in line
    assert not run_dir.exists()


def test_evaluate_on_a_damaged_validation_chunk_names_it(held_out_copy):
    chunk = next(p for p in (held_out_copy / "validation").glob("*/input/c/**/*") if p.is_file())
    damage_chunk(held_out_copy, chunk.relative_to(held_out_copy))
    array = "/".join(chunk.relative_to(held_out_copy).parts[:3])

    result = run(TRAIN, "evaluate", "pretrained", "--store", held_out_copy, "--limit", "8")

    assert_one_line_error(result, f"{array}: chunk c/")


def test_histogram_on_a_damaged_score_chunk_names_it(store_copy, tmp_path):
    damage_chunk(store_copy, "stats/r_mean/c/0/0/0")
    result = run(PREP, "histogram", store_copy, "--png", tmp_path / "h.png")
    assert_one_line_error(result, "stats/r_mean: chunk c/0/0/0 cannot be read")
    assert not (tmp_path / "h.png").exists()


@pytest.mark.parametrize("damage, fragment", [
    (lambda store: [damage_metadata(store, f"tiles/{b.name}/kept")
                    for b in (store / "tiles").glob("0*")],
     "/kept: metadata cannot be read (JSONDecodeError"),
    (lambda store: unknown_codec(store, "sources/0000/noisy"),
     "sources/0000/noisy: metadata cannot be read (UnknownCodecError"),
    (lambda store: damage_metadata(store, ".", '{"zarr_format": 3, "node_ty'),
     "zarr.json: the store's root metadata cannot be read"),
])
@pytest.mark.parametrize("command", [["info"], ["histogram"], ["train"]])
def test_damaged_metadata_is_one_line_in_every_command(store_copy, tmp_path, damage, fragment,
                                                       command):
    damage(store_copy)
    if command == ["train"]:
        result = run(TRAIN, store_copy, "--out", tmp_path / "run", "--steps", "2")
    else:
        result = run(PREP, *command, store_copy)
    if command == ["histogram"] and not fragment.startswith("zarr.json"):
        assert result.returncode == 0  # the histogram reads the scores only: it still works
        return
    assert_one_line_error(result, fragment)


def test_info_says_what_it_checked(store_copy):
    result = run(PREP, "info", store_copy)
    assert result.returncode == 0
    assert "every array's metadata reads (pcst-prep check reads every chunk)" in result.stdout


def test_info_on_an_unfinished_build_says_to_run_the_build_again(store_copy):
    zarr.open_group(str(store_copy), mode="r+").attrs["status"] = "building"
    result = run(PREP, "info", store_copy)
    assert result.returncode == 0
    status = next(line for line in result.stdout.splitlines() if line.startswith("status"))
    assert "interrupted: run the same pcst-prep build command again" in status
