"""Run every benchmark in turn: ``make benchmark``."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [["bench_matching.py"], ["bench_search.py"], ["bench_search.py", "--hd"],
              ["bench_memory.py"], ["bench_build.py"], ["bench_loader.py"], ["bench_store.py"],
              ["bench_train_step.py"]]


def main():
    failed = 0
    for name, *args in BENCHMARKS:
        print(f"=== {' '.join([name, *args])}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / name), *args]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
