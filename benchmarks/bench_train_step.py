"""Training-step throughput of the UNet on this CPU, by the settings torch offers (issue 16.4).

    python benchmarks/bench_train_step.py [--repeats 5] [--steps 10] [--compile]

One step = forward, the training loss (MSE with the default pixel filter,
:class:`pcst_train.losses.FilteredMSE`), backward and Adam on a batch of 16 tiles of 50 x 50 x
3, the training default. Each variant runs ``--repeats`` times ``--steps`` steps after two
warm-up steps; the median steps/s is printed with its ratio to the float32 baseline measured in
the same run. Variants: float32 (the baseline), channels_last memory format, bfloat16 autocast
(fast where the CPU has AVX512-BF16 or AMX), both, one thread instead of all, and with
``--compile`` torch.compile of the model.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time

import torch

from pcst_train.config import TrainConfig
from pcst_train.losses import FilteredMSE
from pcst_train.models import build_model


def rate(steps: int, repeats: int, channels_last=False, bf16=False, compiled=False,
         threads=None, batch=16, tile=50) -> float:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("unet").train()
    x, y = torch.rand(batch, 3, tile, tile), torch.rand(batch, 3, tile, tile)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model
    criterion = FilteredMSE(TrainConfig().pixel_filter)

    def step():
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16
                    else contextlib.nullcontext())
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = forward(x)
        criterion(out.float(), y, x).backward()
        optimizer.step()

    for _ in range(2):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps / (time.perf_counter() - start))
    torch.set_num_threads(previous)
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    variants = {"float32 (baseline)": {}, "channels_last": {"channels_last": True},
                "bfloat16 autocast": {"bf16": True},
                "channels_last + bfloat16": {"channels_last": True, "bf16": True},
                "float32, 1 thread": {"threads": 1}}
    if args.compile:
        variants["torch.compile"] = {"compiled": True}
        variants["torch.compile + bfloat16"] = {"compiled": True, "bf16": True}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; median of {args.repeats} x "
          f"{args.steps} steps, UNet, batch 16 of 50x50x3")
    baseline = None
    for name, options in variants.items():
        value = rate(args.steps, args.repeats, **options)
        baseline = baseline or value
        print(f"{name:28s} {value:6.2f} steps/s   x{value / baseline:.2f}", flush=True)


if __name__ == "__main__":
    main()
