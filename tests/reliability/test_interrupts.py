"""kill -9 at a random point (drawn from a seed) of a build or a training run: the same
command continues it to the very result of an uninterrupted run (issue 12)."""

import os
import random
import shutil
import signal
import subprocess
import time

import pytest
import torch
import zarr

from conftest import ENV, PREP, TRAIN, command, run, start
from helpers import assert_same_store
from pcst_prep import store as zstore
from pcst_train.checkpoints import load_model

BUILD = ["--pipeline", "demo", "--burst-length", "3", "--burst-stride", "1", "--patch-size",
         "15", "--search-radius", "8", "--tile-size", "40", "--tile-stride", "40",
         "--targets-per-tile", "2", "--no-progress"]


def kill_at(process, seconds: float, until) -> bool:
    """SIGKILL ``process`` once ``until()`` is true (or after ``seconds``); whether it was
    still running then."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None and not until():
        time.sleep(0.005)
    alive = process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return alive


def tasks_done(store) -> int:
    """Tasks a build has finished: bursts scored (stage 1) and frames stored (stage 3)."""
    try:
        group = zarr.open_group(str(store), mode="r")
        done = int(group["bursts/scored"][:].sum())
        if "sources" in group:
            done += sum(int(node["written"][:].sum())
                        for _, node in zstore.subgroups(group["sources"]))
        return done
    except Exception:  # not created yet, or being written
        return 0


@pytest.fixture(scope="module")
def reference_build(demo_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "reference.zarr"
    result = run(PREP, "build", demo_dir, path, *BUILD)
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_a_build_killed_at_a_random_point_resumes_to_the_same_store(reference_build, demo_dir,
                                                                    tmp_path, seed):
    store = tmp_path / "killed.zarr"
    task = random.Random(seed).randrange(1, tasks_done(reference_build))  # killed after it

    for _ in range(4):  # a loaded machine's poll can see a late task only once the build ended
        shutil.rmtree(store, ignore_errors=True)
        (tmp_path / "killed.zarr.lock").unlink(missing_ok=True)
        process = start(PREP, "build", demo_dir, store, *BUILD)
        assert kill_at(process, 300, until=lambda: tasks_done(store) >= task), "killed too late"
        if zarr.open_group(str(store), mode="r").attrs["status"] == "building":
            break
        task = max(1, task // 2)  # the build outran the poll: kill it earlier
    else:
        pytest.fail("every build finished before its kill")
    result = run(PREP, "build", demo_dir, store, *BUILD)  # the same command

    assert result.returncode == 0 and "resumed and finished" in result.stdout, result.stderr
    assert_same_store(store, reference_build)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["in-process", "distributed"])
def test_ctrl_c_stops_a_build_with_one_line_and_the_build_resumes(reference_build, demo_dir,
                                                                  tmp_path, workers):
    """Ctrl-C on a terminal signals the whole process group, the Dask workers too: the build
    stops with exit status 130 and the one line that says how to continue (no traceback from
    a worker, no Dask warning; in one process, no SystemError from a Numba kernel that the
    interrupt cut short: it stops between tasks), and the same command finishes the store."""
    store = tmp_path / "ctrl_c.zarr"
    process = subprocess.Popen(
        command(PREP, "build", demo_dir, store, *BUILD, *workers),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        start_new_session=True,  # its own group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while process.poll() is None and tasks_done(store) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        "pcst-prep: interrupted; run the same command again to resume"), stderr
    for noise in ("Traceback", "WARNING", "KeyboardInterrupt", "leaked", "Error"):
        assert noise not in stderr, stderr
    result = run(PREP, "build", demo_dir, store, *BUILD)

    assert result.returncode == 0 and "resumed and finished" in result.stdout, result.stderr
    assert_same_store(store, reference_build)


TRAINING = ["--model", "dncnn", "--epochs", "6", "--batch-size", "8", "--seed", "2",
            "--log-every", "1", "--no-progress"]


def steps_logged(folder) -> int:
    try:
        return max(0, len((folder / "log.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def reference_run(tiny_store, small_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "straight"
    result = run(TRAIN, tiny_store, "--out", folder, "--init", small_model, *TRAINING)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_a_training_killed_at_a_random_point_resumes_to_the_same_weights(reference_run,
                                                                         small_model,
                                                                         tiny_store, tmp_path,
                                                                         seed):
    straight = reference_run
    folder = tmp_path / "killed"
    steps = len((straight / "log.csv").read_text().splitlines()) - 1
    step = random.Random(seed).randrange(1, steps - 1)  # the step at which it is killed

    training = [tiny_store, "--out", folder, "--init", small_model, *TRAINING]
    assert kill_at(start(TRAIN, *training), 300, until=lambda: steps_logged(folder) >= step), \
        "killed too late"
    assert not (folder / "final.pt").exists()
    result = run(TRAIN, *training, "--resume")

    assert result.returncode == 0, result.stderr
    a, _ = load_model(straight / "final.pt")
    b, _ = load_model(folder / "final.pt")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_a_local_workers_lost_scheduler_error_is_not_shown_and_its_other_errors_are():
    """After Ctrl-C the driver closes the cluster, and a worker's heartbeat can fire in
    between: distributed.worker then logs "Failed to communicate with scheduler during
    heartbeat." with a traceback (seen once in six runs of the test above). The workers'
    setup drops that record, and only that one."""
    import logging
    import threading

    from pcst_prep.runner import dask_setup

    logger = logging.getLogger("distributed.worker")
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    before = list(logger.filters)
    try:
        setup = threading.Thread(target=dask_setup, args=(None,))  # not the main thread: no
        setup.start()                                              # signal handler changed
        setup.join()
        try:
            raise ConnectionError("Stream is closed")
        except ConnectionError:
            logger.exception("Failed to communicate with scheduler during heartbeat.")
            logger.exception("Compute Failed")
    finally:
        logger.removeHandler(handler)
        logger.filters[:] = before

    assert [r.getMessage() for r in seen] == ["Compute Failed"]
