"""Running a build's tasks: in this process, on a local cluster of processes, or on an
existing dask.distributed cluster, with progress either way."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Callable, Protocol, Sequence

from .errors import InputError
from .progress import Progress, interrupt_between


TRACKER_WARNING = "ignore::UserWarning:multiprocessing.resource_tracker"


class LostScheduler(logging.Filter):
    """Drops a local worker's "Failed to communicate with scheduler during heartbeat" error
    (with its traceback): it means that the driver's scheduler has gone, which after Ctrl-C is
    the driver closing the cluster (the worker's heartbeat can fire in between), and any
    other time the driver's own error says what happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to communicate with scheduler")


def dask_setup(worker):
    """Run by each worker of a local cluster as it starts (a Dask preload): SIGINT is the
    driver's to handle, and so is the scheduler's going away (:class:`LostScheduler`)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker").addFilter(LostScheduler())


class Task(Protocol):
    """One unit of a stage: ``task(item, n_threads)``; ``n_threads`` is the Numba thread count
    the task may use (None: Numba's default). Tasks are module-level functions (or partials of
    them) so that they travel to worker processes."""

    def __call__(self, item, n_threads: int | None): ...


class Runner:
    """Runs task lists on the synchronous scheduler (1 worker), a local cluster of processes,
    or an existing dask.distributed cluster.

    An external scheduler is connected at once (a bad address fails before anything is
    written); a local cluster starts only when there is work for it. Each task gets the
    Numba thread count that shares the host's cores among its Dask threads.
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None, progress: bool = True):
        self.client = self.cluster = None
        self.workers, self.progress, self.n_threads = workers, progress, None
        if scheduler:
            from distributed import Client

            try:
                self.client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
            info = self.client.scheduler_info(n_workers=-1)["workers"].values()
            threads = sum(w["nthreads"] for w in info) or 1
            hosts = len({w["host"] for w in info}) or 1
            self.n_threads = max(1, (os.cpu_count() or 1) * hosts // threads)

    def _start_local_cluster(self):
        from distributed import Client, LocalCluster

        self.n_threads = max(1, (os.cpu_count() or 1) // self.workers)
        # Ctrl-C reaches every process of the group: it is this one's to handle (it closes the
        # cluster; the build resumes later), so the workers ignore it (dask_setup above, run
        # in each worker as it starts) rather than each printing a traceback. silence_logs:
        # Dask's own warnings (a task cancelled, a busy worker stopped) are not the user's
        # business; its errors still show. A worker stopped in the middle of a task leaves its
        # semaphores to multiprocessing's resource tracker, which removes them and then warns
        # that it did; the tracker and the workers take their warning filters from
        # sys.warnoptions.
        if TRACKER_WARNING not in sys.warnoptions:
            sys.warnoptions.append(TRACKER_WARNING)
        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=logging.ERROR,
                                    preload=[__name__],
                                    env={"NUMBA_NUM_THREADS": str(self.n_threads)})
        self.client = Client(self.cluster)

    def run(self, task: Task | Callable, items: Sequence, *, label: str, unit: str) -> list:
        """``task(item, n_threads)`` for every item; results in completion order."""
        if not items:
            return []
        if self.client is None and self.workers > 1:
            self._start_local_cluster()
        on_terminal = self.progress and sys.stderr.isatty()
        bar = Progress(len(items), label, unit, enabled=self.progress)
        results = []
        start = time.perf_counter()
        try:
            if self.client is None:  # Ctrl-C stops between tasks, not inside a kernel
                for item in interrupt_between(items):
                    results.append(task(item, self.n_threads))
                    bar.update()
            else:
                from distributed import as_completed

                futures = [self.client.submit(task, item, self.n_threads, pure=False)
                           for item in items]
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update()
        finally:
            bar.close()
        if not on_terminal:
            print(f"{label}: {len(items)} tasks in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
        return results

    def close(self):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
