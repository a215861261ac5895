"""A full disk, simulated by a file size limit (RLIMIT_FSIZE: every write past it fails with
EFBIG, as one on a full disk fails with ENOSPC): one line naming where, exit 2, nothing
half-written, and the same command continues once there is room (issue 12.6)."""

import pytest
import zarr

from conftest import PREP, TINY, TRAIN, assert_one_line_error, run
from helpers import assert_same_store

LIMIT = 40 * 1024  # bytes: the store's metadata, scores, nnf and 16-bit frames fit (at most
# 18 KiB a file here), a float32 frame with its synthetic noise (48-58 KiB) does not


@pytest.mark.slow
def test_a_build_on_a_full_disk_stops_in_one_line_and_resumes_to_the_same_store(tiny_input,
                                                                                tmp_path):
    store, reference = tmp_path / "full.zarr", tmp_path / "reference.zarr"
    options = [*TINY, "--tile-stride", "6"]

    result = run(PREP, "build", tiny_input, store, *options, file_size_limit=LIMIT)

    assert_one_line_error(result, str(store), "File too large", "free space and run the same "
                                                                 "command again")
    assert zarr.open_group(str(store), mode="r").attrs["status"] == "building"
    assert not (tmp_path / "full.zarr.lock").exists()  # the lock went with the build
    resumed = run(PREP, "build", tiny_input, store, *options)
    assert resumed.returncode == 0 and "resumed and finished" in resumed.stdout
    assert run(PREP, "build", tiny_input, reference, *options).returncode == 0
    assert_same_store(store, reference)


def test_training_that_cannot_write_its_first_checkpoint_leaves_nothing(store_copy,
                                                                         small_model, tmp_path):
    run_dir = tmp_path / "run"
    result = run(TRAIN, store_copy, "--out", run_dir, "--model", "dncnn", "--init", small_model,
                 "--steps", "30", "--batch-size", "4", "--no-progress", file_size_limit=2_000)
    assert_one_line_error(result, str(run_dir), "File too large")
    assert not run_dir.exists()  # no empty folder, no log, no .tmp


def test_a_resumed_run_on_a_full_disk_keeps_its_last_checkpoint(store_copy, small_model,
                                                                 tmp_path):
    run_dir = tmp_path / "run"
    common = [store_copy, "--out", run_dir, "--model", "dncnn", "--init", small_model,
              "--batch-size", "8", "--no-progress"]
    assert run(TRAIN, *common, "--epochs", "1").returncode == 0
    last = (run_dir / "last.pt").read_bytes()

    result = run(TRAIN, *common, "--epochs", "2", "--resume", file_size_limit=len(last) // 2)

    assert_one_line_error(result, "last.pt", "File too large", "--resume")
    assert (run_dir / "last.pt").read_bytes() == last  # the good checkpoint is untouched
    assert not list(run_dir.glob("*.tmp"))
    assert run(TRAIN, *common, "--epochs", "2", "--resume").returncode == 0
