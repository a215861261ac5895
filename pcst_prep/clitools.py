"""What both command lines share: errors a user can cause become one line and exit status 2."""

from __future__ import annotations

import errno
import sys

import click

from .errors import InputError


class ErrorReportingGroup(click.Group):
    """A click group that reports :class:`InputError` and OS failures (full disk, permissions)
    as one line on stderr with exit status 2, and Ctrl-C with a hint on how to continue.

    Subclasses set ``prog`` and ``resume_hint``."""

    prog = "pcst"
    resume_hint = "run the same command again to resume"

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            self._fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            hint = f"; free space and {self.resume_hint}" if exc.errno == errno.ENOSPC else ""
            self._fail(f"{where}{exc.strerror or exc}{hint}")
        except KeyboardInterrupt:
            click.echo(f"{self.prog}: interrupted; {self.resume_hint}", err=True)
            sys.exit(130)

    def _fail(self, message: str):
        click.echo(f"{self.prog}: error: {message}", err=True)
        sys.exit(2)
