"""What both command lines share: errors a user can cause become one line and exit status 2,
and command-line options generated from the configuration dataclasses' declarations."""

from __future__ import annotations

import dataclasses
import errno
import logging
import sys

import click

from .errors import InputError

_OPTION_TYPES = {"int": int, "int | None": int, "float": float, "str": str, "str | None": str,
                 "int | str": str}


def param(default=dataclasses.MISSING, *, help: str, choices=None, option: str | None = None,
          cli: bool = True, default_factory=dataclasses.MISSING):
    """A configuration field declared once: its default, its help text and its CLI option.

    ``option`` renames the option (default ``--field-name``); ``cli=False`` keeps the field
    off the command line; ``choices`` restricts a string option.
    """
    metadata = {"help": help, "choices": choices, "option": option, "cli": cli}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def config_options(config_class, *, defaults_from_preset: bool = False):
    """A decorator adding one click option per CLI field of ``config_class``.

    Options are named after the fields (``patch_size`` -> ``--patch-size``), booleans as
    ``--name/--no-name`` pairs. With ``defaults_from_preset`` every option defaults to None
    (unset: the preset decides); otherwise the field's default is shown in the help.
    Read the values back with :func:`config_values`.
    """
    def decorate(command):
        for field in reversed(dataclasses.fields(config_class)):
            meta = field.metadata
            if not meta.get("cli"):
                continue
            flag = meta["option"] or "--" + field.name.replace("_", "-")
            kwargs = {"help": meta["help"]}
            if defaults_from_preset:
                kwargs["default"] = None
            else:
                kwargs["default"] = field.default
                kwargs["show_default"] = field.default is not None
            if field.type == "bool":
                flag = f"{flag}/--no-{flag[2:]}"
            elif meta["choices"]:
                kwargs["type"] = click.Choice(meta["choices"])
            else:
                kwargs["type"] = _OPTION_TYPES[field.type]
            command = click.option(flag, field.name, **kwargs)(command)
        return command

    return decorate


def config_values(config_class, options: dict) -> dict:
    """The CLI fields of ``config_class`` that were given (not None), popped from ``options``."""
    names = [f.name for f in dataclasses.fields(config_class) if f.metadata.get("cli")]
    values = {name: options.pop(name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


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
            hint = (f"; free space and {self.resume_hint}"
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "")
            self._fail(f"{where}{exc.strerror or exc}{hint}")
        except KeyboardInterrupt:
            click.echo(f"{self.prog}: interrupted; {self.resume_hint}", err=True)
            # zarr's event-loop thread may still hold the reads the interrupt cut short: at
            # exit asyncio would log each as "Task was destroyed but it is pending!"
            logging.getLogger("asyncio").disabled = True
            sys.exit(130)

    def _fail(self, message: str):
        click.echo(f"{self.prog}: error: {message}", err=True)
        sys.exit(2)
