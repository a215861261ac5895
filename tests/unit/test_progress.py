"""Progress helpers: Ctrl-C during a build's synchronous work stops between steps, not inside a
kernel."""

import os
import signal

import pytest

from pcst_prep.progress import interrupt_between


def test_ctrl_c_stops_after_the_current_item(capsys):
    done = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        for item in interrupt_between(range(5)):
            if item == 1:
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: held
            done.append(item)
    assert done == [0, 1]  # the item under way finished; the next did not start
    assert "stopping after the current step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_a_second_ctrl_c_stops_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt):
        for item in interrupt_between(range(5)):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # raises here, inside the item
            done.append(item)
    assert done == []


def test_without_ctrl_c_every_item_passes():
    assert list(interrupt_between(iter(range(4)))) == [0, 1, 2, 3]


def test_a_build_task_in_this_process_finishes_before_ctrl_c_stops_the_build():
    """Runner.run without workers: the task under way is not cut short (where it would be
    inside a Numba kernel's call, the interrupt can surface as a SystemError or be swallowed
    by a destructor); the build stops before the next task."""
    import time

    from pcst_prep.runner import Runner

    finished = []

    def task(item, n_threads):
        if item == 0:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # where an immediate KeyboardInterrupt would land
        finished.append(item)
        return item

    with pytest.raises(KeyboardInterrupt):
        Runner(1, progress=False).run(task, [0, 1, 2], label="test", unit="task")
    assert finished == [0]
