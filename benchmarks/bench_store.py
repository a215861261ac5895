"""Store format 2 (frames once, nnf, table of kept pairs) against format 1 (every tile and K
targets copied): bytes per input megapixel, and the loader's pairs/s against what the UNet
consumes, measured side by side in one run.

    .venv/bin/python benchmarks/bench_store.py [--frames 21] [--repeats 3] [--out DIR]

Inputs: the demo's 21 Big Buck Bunny frames (180 x 320, 8-bit PNG). For ``paper-real`` they
get the project's ``camera`` noise (shot 0.006, read 0.006) and are written back as 8-bit
PNGs, as a camera's noisy footage would be (the preset adds no noise); ``paper-synthetic``
takes the clean frames and adds its sigma-20 k-3 noise. Both presets as shipped except
``--search dense`` for paper-real (its step-3 grid to 500 px takes minutes a burst and does not
change what is stored, only where the matches point). Each setting is built with
``store_format`` 1 and 2 from the same input.

Loader: pairs/s that StoreDataset delivers (shuffling, a random kept offset, augmentation)
through a DataLoader with 0 and 2 spawned workers, from the local store and, for format 2,
from an S3 server on loopback (moto, as the tests use, in a process of its own); against the
pairs/s that one UNet training step consumes at batch 16 with the trainer's settings on this
CPU (channels-last, bfloat16 where native). Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_loader import loader_rate, model_rate

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "bigbuckbunny"


def noisy_footage(out: Path, n_frames: int) -> Path:
    """The demo frames with camera noise, quantised to 8-bit PNGs like a camera's output."""
    from pcst_prep.bursts import read_sequence, write_image
    from pcst_prep.noise import CameraPipeline, frame_rng

    frames = read_sequence(DEMO)[:n_frames]
    folder = out / "noisy_footage"
    if folder.exists():  # an earlier run's (--out)
        return folder
    folder.mkdir(parents=True)
    model = CameraPipeline(shot=0.006, read=0.006)
    for i, frame in enumerate(frames):
        noisy = np.clip(model(frame[None], frame_rng(0, 0, i))[0], 0, 1)
        write_image(folder / f"{i:04d}.png", noisy, np.uint8)
    return folder


def clean_footage(out: Path, n_frames: int) -> Path:
    folder = out / "clean_footage"
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    for path in sorted(DEMO.glob("*.png"))[:n_frames]:
        shutil.copy(path, folder / path.name)
    return folder


def build_both(name: str, input_dir: Path, out: Path, **overrides) -> dict:
    from pcst_prep.build import build
    from pcst_prep.config import load_pipeline
    from pcst_prep.store import store_size

    row = {}
    for version in (1, 2):
        config = load_pipeline(name, store_format=version, **overrides)
        path = out / f"{name}_v{version}.zarr"
        start = time.perf_counter()
        summary = build(input_dir, path, config, progress=False)
        row[version] = {"path": path, "bytes": store_size(path), "samples": summary.samples,
                        "seconds": time.perf_counter() - start}
    return row


def megapixels(input_dir: Path) -> float:
    from pcst_prep.bursts import find_sequences, probe_sequence

    infos = [probe_sequence(s) for s in find_sequences(input_dir)]
    return sum(i.n_frames * i.height * i.width for i in infos) / 1e6


def s3_bucket():
    """An S3 server on loopback (moto) in a process of its own, as a real object store is
    (in this process it would compete with the loader for the GIL); (url, stop), or
    (None, no-op) without moto and s3fs."""
    import socket
    import subprocess

    try:
        import moto.server  # noqa: F401
        import s3fs
    except ImportError:
        return None, lambda: None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    s3fs.S3FileSystem.clear_instance_cache()
    for _ in range(100):
        try:
            s3fs.S3FileSystem().mkdir("bench")
            break
        except Exception:
            time.sleep(0.1)

    def stop():
        server.terminate()
        server.wait()

    return "s3://bench", stop


def upload(path: Path, url: str):
    import s3fs

    s3fs.S3FileSystem().put(str(path), url[5:], recursive=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the stores here (default: a temporary folder)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_store_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; stores in {out}", flush=True)

    real_input, clean_input = noisy_footage(out, args.frames), clean_footage(out, args.frames)
    settings = {"paper-real": build_both("paper-real", real_input, out, search="dense"),
                "paper-synthetic": build_both("paper-synthetic", clean_input, out)}
    print(f"\nstore bytes per input megapixel ({args.frames} frames of 180 x 320, "
          f"{megapixels(real_input):.2f} MP)")
    print(f"{'setting':<16} {'samples':>8} {'format 1':>12} {'format 2':>12} {'smaller':>8}"
          f" {'build s (1 / 2)':>16}")
    for name, row in settings.items():
        mp = megapixels(real_input if name == "paper-real" else clean_input)
        v1, v2 = (row[v]["bytes"] / mp for v in (1, 2))
        print(f"{name:<16} {row[1]['samples']:>8,} {v1 / 2**20:>8.1f} MiB {v2 / 2**20:>8.2f} MiB "
              f"{v1 / v2:>7.1f}x {row[1]['seconds']:>7.1f} / {row[2]['seconds']:.1f}", flush=True)

    bucket, stop = s3_bucket()
    try:
        stores = {"paper-real, format 1": settings["paper-real"][1]["path"],
                  "paper-real, format 2": settings["paper-real"][2]["path"]}
        if bucket:
            url = f"{bucket}/paper-real_v2.zarr"
            upload(stores["paper-real, format 2"], url)
            stores["paper-real, format 2, S3"] = url
        rates, startups = {}, {}
        for _ in range(args.repeats):
            for label, store in stores.items():
                for workers in (0, 2):
                    rate, startup = loader_rate(store, workers, startup=True)
                    rates.setdefault(f"{label}, {workers} workers", []).append(rate)
                    startups.setdefault(f"{label}, {workers} workers", []).append(startup)
            rates.setdefault("UNet training step", []).append(model_rate("unet", trainer=True))
    finally:
        stop()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    consumed = medians["UNet training step"]
    print(f"\nloader pairs/s (batch 16, the second half of an epoch, medians of {args.repeats}) "
          f"against the UNet's consumption; seconds to the first batch")
    for label, value in medians.items():
        first = (f"{statistics.median(startups[label]):5.1f} s" if label in startups
                 else " " * 7)
        print(f"{label:<40} {value:8.0f} {value / consumed:7.1f}x {first}  "
              f"[{', '.join(f'{r:.0f}' for r in rates[label])}]")
    for version in ("format 2", "format 1"):
        slowest = min(v for k, v in medians.items() if version in k)
        print(f"slowest {version} loader / UNet: {slowest / consumed:.1f}x (goal: at least 5x)")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
