"""Store loader throughput against the model's consumption rate on CPU.

    python benchmarks/bench_loader.py [--store data/demo.zarr] [--repeats 3]

Pairs per second delivered by StoreDataset (chunk-order and buffer shuffling, random target,
augmentation) through a DataLoader with 0 and 2 spawned workers, against the pairs per second
that one training step of the UNet and DnCNN consumes (forward, backward, Adam) at batch 16.
The loader is not the bottleneck when its rate exceeds the model's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pcst_train.data import StoreDataset, make_loader
from pcst_train.models import build_model


def loader_rate(store, workers, batch_size=16, startup=False):
    """Pairs/s of one epoch's second half (spawned workers take seconds to start: by the
    second half every worker delivers); with ``startup`` also the seconds to the first
    batch."""
    dataset = StoreDataset(store, seed=0)
    loader = make_loader(dataset, batch_size, workers)
    start, stamps = time.perf_counter(), []
    for x, _ in loader:
        stamps.append((time.perf_counter(), len(x)))
    half = len(stamps) // 2
    pairs = sum(n for _, n in stamps[half + 1:])
    rate = pairs / (stamps[-1][0] - stamps[half][0])
    return (rate, stamps[0][0] - start) if startup else rate


def model_rate(name, batch_size=16, steps=10, tile=50, trainer=False):
    """Pairs/s one training step consumes; ``trainer``: with the trainer's settings on this
    CPU (channels-last, bfloat16 autocast where native), else float32."""
    import contextlib

    from pcst_train.config import TrainConfig
    from pcst_train.losses import FilteredLoss
    from pcst_train.loop import resolve_precision

    model = build_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = torch.rand(batch_size, 3, tile, tile), torch.rand(batch_size, 3, tile, tile)
    defaults = TrainConfig()
    criterion = FilteredLoss(defaults.pixel_filter, loss=defaults.loss)  # the training loss
    autocast = contextlib.nullcontext
    if trainer:
        model = model.to(memory_format=torch.channels_last)
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
        if resolve_precision("auto", torch.device("cpu")) == "bfloat16":
            autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731

    def step():
        optimizer.zero_grad()
        with autocast():
            output = model(x)
        criterion(output.float(), y, x).backward()
        optimizer.step()

    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="data/demo.zarr")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rates = {"loader, 0 workers": [], "loader, 2 workers": [], "UNet training": [],
             "DnCNN training": []}
    for _ in range(args.repeats):
        rates["loader, 0 workers"].append(loader_rate(args.store, 0))
        rates["loader, 2 workers"].append(loader_rate(args.store, 2))
        rates["UNet training"].append(model_rate("unet"))
        rates["DnCNN training"].append(model_rate("dncnn"))
    medians = {k: statistics.median(v) for k, v in rates.items()}
    fastest_model = max(medians["UNet training"], medians["DnCNN training"])
    print(f"store {args.store}, batch 16, torch threads {torch.get_num_threads()}")
    print(f"{'':<20} {'pairs/s':>9} {'x fastest model':>16}")
    for name, value in medians.items():
        print(f"{name:<20} {value:9.0f} {value / fastest_model:15.1f}x   "
              f"[{', '.join(f'{r:.0f}' for r in rates[name])}]")
    slowest_loader = min(medians["loader, 0 workers"], medians["loader, 2 workers"])
    print("loader is " + ("never" if slowest_loader > fastest_model else "SOMETIMES") +
          " the bottleneck")


if __name__ == "__main__":
    main()
