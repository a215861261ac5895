"""Training-step throughput of the UNet on this CPU or a GPU, by the settings torch offers
(issue 16.4).

    python benchmarks/bench_train_step.py [--repeats 5] [--steps 10] [--compile] [--device cuda]

One step = forward, the training loss (the default error and pixel filter,
:class:`pcst_train.losses.FilteredLoss`), backward and Adam on a batch of 16 tiles of 50 x 50 x
3, the training default. Each variant runs ``--repeats`` times ``--steps`` steps after two
warm-up steps; the median steps/s is printed with its ratio to the float32 baseline measured in
the same run. Variants: float32 (the baseline), channels_last memory format, bfloat16 autocast
(fast where the CPU has AVX512-BF16 or AMX, or on a GPU's tensor cores), both, one thread
instead of all (CPU only), and with ``--compile`` torch.compile of the model (on a GPU also its
"reduce-overhead" mode, which replays the step's kernels as a CUDA graph). On a GPU the
timings wait for the device (``torch.cuda.synchronize``) before reading the clock.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time

import torch

from pcst_train.config import TrainConfig
from pcst_train.losses import FilteredLoss
from pcst_train.models import build_model


def rate(steps: int, repeats: int, channels_last=False, bf16=False, compiled=False,
         threads=None, batch=16, tile=50, device="cpu", mode=None) -> float:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device)
    model = build_model("unet").train().to(device)
    x, y = (torch.rand(batch, 3, tile, tile, device=device) for _ in range(2))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = torch.compile(model, mode=mode) if compiled else model
    criterion = FilteredLoss(TrainConfig().pixel_filter, loss=TrainConfig().loss)

    def step():
        autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16
                    else contextlib.nullcontext())
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = forward(x)
        criterion(out.float(), y, x).backward()
        optimizer.step()

    def wait():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3 if mode else 2):  # CUDA graphs are recorded on the third call
        step()
    rates = []
    for _ in range(repeats):
        wait()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wait()
        rates.append(steps / (time.perf_counter() - start))
    torch.set_num_threads(previous)
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    variants = {"float32 (baseline)": {}, "channels_last": {"channels_last": True},
                "bfloat16 autocast": {"bf16": True},
                "channels_last + bfloat16": {"channels_last": True, "bf16": True}}
    if not gpu:
        variants["float32, 1 thread"] = {"threads": 1}
    if args.compile:
        if not gpu:
            variants["torch.compile"] = {"compiled": True}
        variants["torch.compile + bfloat16"] = {"compiled": True, "bf16": True}
        if gpu:
            variants["channels_last + bf16 + compile"] = {"compiled": True, "bf16": True,
                                                          "channels_last": True}
            variants["compile reduce-overhead + bf16"] = {"compiled": True, "bf16": True,
                                                          "mode": "reduce-overhead"}
    where = (f"{torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}" if gpu
             else f"{torch.get_num_threads()} threads, "
                  f"{platform.processor() or platform.machine()}")
    print(f"torch {torch.__version__}, {where}; median of {args.repeats} x "
          f"{args.steps} steps, UNet, batch 16 of 50x50x3")
    baseline = None
    for name, options in variants.items():
        value = rate(args.steps, args.repeats, device=args.device, **options)
        baseline = baseline or value
        print(f"{name:28s} {value:6.2f} steps/s   x{value / baseline:.2f}", flush=True)


if __name__ == "__main__":
    main()
