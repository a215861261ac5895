"""The one exception type users see for bad input."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad input: a file or parameter the tool cannot use.

    The message is one line that names the file (when there is one) and the problem, so that a
    CLI can print it as it is and exit with status 2.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        message = problem if self.path is None else f"{self.path}: {problem}"
        super().__init__(" ".join(message.split()))
