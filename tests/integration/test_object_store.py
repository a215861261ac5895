"""Stores on an object store through fsspec: an S3 server on loopback (moto), a two-process
Dask build, the CLI and the trainer reading the result."""

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from pcst_prep import InputError
from pcst_prep.cli import main as prep_main
from pcst_prep.build import build
from helpers import assert_same_store

pytestmark = pytest.mark.slow
moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def bucket():
    """An empty bucket on a loopback S3 server; the endpoint reaches spawned workers through
    the environment (botocore reads AWS_ENDPOINT_URL)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    patch = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        patch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("pcst-test")
    yield "s3://pcst-test"
    patch.undo()
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_two_process_build_on_s3_equals_the_local_build(bucket, tiny_store, tiny_input,
                                                        tiny_config):
    url = f"{bucket}/two_workers.zarr"
    summary = build(tiny_input, url, tiny_config, workers=2, progress=False)
    assert summary.store == url
    assert_same_store(tiny_store, url)
    # the same command again resumes and changes nothing
    assert build(tiny_input, url, tiny_config, progress=False).resumed
    assert_same_store(tiny_store, url)


def test_cli_and_trainer_read_a_store_by_url(bucket, tiny_input, tiny_config, tiny_store,
                                             tmp_path):
    from pcst_train.data import StoreDataset, open_training_store

    url = f"{bucket}/cli.zarr"
    build(tiny_input, url, tiny_config, progress=False)
    result = CliRunner().invoke(prep_main, ["info", url])
    assert result.exit_code == 0, result.output
    assert f"store          {url}" in result.output and "status         complete" in result.output
    group = open_training_store(url)
    local = zarr.open_group(str(tiny_store), mode="r")
    np.testing.assert_array_equal(group["sources/0000/noisy"][...],
                                  local["sources/0000/noisy"][...])
    # the trainer crafts the same pairs from the object store as from the local store
    pairs = [sorted(x.numpy().tobytes() + y.numpy().tobytes()
                    for x, y in StoreDataset(path, seed=0, augment=False))
             for path in (url, tiny_store)]
    assert pairs[0] == pairs[1] and len(pairs[0]) == local["bursts/tiles"][-1]


def test_overwrite_replaces_only_pcst_stores_on_s3(bucket, tiny_input, tiny_config):
    fs = s3fs.S3FileSystem()
    foreign = f"{bucket}/foreign.zarr"
    fs.pipe(f"{foreign[5:]}/notes.txt", b"not ours")
    with pytest.raises(InputError, match="not a pcst store"):
        build(tiny_input, foreign, tiny_config, overwrite=True, progress=False)
    assert fs.cat(f"{foreign[5:]}/notes.txt") == b"not ours"


def test_unknown_protocol_is_one_line(tiny_input, tiny_config):
    with pytest.raises(InputError, match="nosuchfs://x.zarr: cannot open this URL"):
        build(tiny_input, "nosuchfs://x.zarr", tiny_config, progress=False)
