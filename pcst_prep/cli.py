"""``pcst-prep``: the command line over :mod:`pcst_prep`. Thin: it builds configurations and
calls the Python API; every error a user can cause is one line on stderr and exit status 2."""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import InputError


class _Group(click.Group):
    """Turns :class:`InputError` into one line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"pcst-prep: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcst-prep")
def main():
    """Build patch-craft training sets from folders of noisy videos or bursts."""
