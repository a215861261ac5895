"""Progress of long jobs, wherever they run: a bar on a terminal, otherwise a line at a steady
interval (under nohup, a batch scheduler, CI or a log file) with the rate and the time left."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


class Progress:
    """``update(n)`` as work is done; ``close()`` at the end. ``postfix`` adds a short status
    (a loss, say) to the bar or the line.

    Parameters
    ----------
    total : units of work
    desc, unit : what is done, and in which unit
    enabled : False: silent
    interval : seconds between lines off a terminal (default: the environment variable
        PCST_PROGRESS_SECONDS, else 10)
    stream : where to write (stderr)
    at_most : the work may stop before ``total`` (a training with patience): the lines say
        "at most" of the time left
    """

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0,
                 enabled: bool = True, interval: float | None = None, stream=None,
                 at_most: bool = False):
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.at_most = at_most
        self.stream = stream or sys.stderr
        if interval is None:
            interval = float(os.environ.get("PCST_PROGRESS_SECONDS", 10))
        self.interval, self.postfix = interval, ""
        self.start = self.last_line = time.monotonic()
        self.start_done = initial
        self.bar = None
        self.enabled = enabled
        if enabled and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                            file=self.stream, leave=False)

    def update(self, n: int = 1, postfix: str | None = None):
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        if self.bar is not None:
            self.bar.update(n)
            if postfix is not None:
                self.bar.set_postfix_str(postfix)
        elif self.enabled and time.monotonic() - self.last_line >= self.interval:
            self.line()

    def line(self):
        """One progress line: done / total, rate, time left."""
        self.last_line = time.monotonic()
        elapsed = self.last_line - self.start
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        share = self.done / self.total if self.total else 1.0
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.done}/{self.total} {self.unit}s ({share:.0%}), "
              f"{rate:.3g} {self.unit}s/s, {'at most ' if self.at_most else ''}"
              f"{_duration(left)} left{extra}",
              file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def interrupt_between(items, prog: str = "pcst-prep"):
    """Yield ``items``, holding a Ctrl-C (SIGINT) that arrives while one is processed until it
    is done, and then raising KeyboardInterrupt before the next one.

    Raised at once, the interrupt can land inside a Numba kernel's call (which then fails with
    a SystemError and a traceback) or in an object's destructor (where Python prints it and
    carries on as if nothing happened). A second Ctrl-C raises at once. Off the main thread
    (where signals cannot be handled) the items pass unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield from items
        return
    pressed = []

    def hold(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)
        print(f"{prog}: stopping after the current step (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        for item in items:
            yield item
            if pressed:
                raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
