"""What every ``mmib`` command shares: one place that turns a user's mistake into one line.

A command raising one of :func:`user_errors` ends in ``error: <what>`` on stderr and exit code 2 (``--debug``
anywhere on the line shows the traceback instead); any other exception is a bug and keeps its traceback.
:class:`App` gives every command of a group that behaviour (as ``typer.Typer`` gives them its own).
"""

from __future__ import annotations

import typer
from typer.core import TyperCommand

DEBUG = {"on": False}  # set by mmib.cli.main from --debug


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a mistake in what the user gave, not a bug: the package's own
    (:class:`mmib.errors.UserError`: settings, data files, prediction inputs, outputs in use) and the operating
    system's errors about the user's files and folders (``OSError``: missing, unreadable, not writable). A
    ``ValueError`` or ``TypeError`` from anywhere else is a bug and keeps its traceback."""
    from mmib.errors import UserError

    return (UserError, OSError)


def refuse(message: str) -> typer.Exit:
    """Print ``error: <message>`` (its first line) and return the exit to raise: ``raise refuse(...)``."""
    typer.secho(f"error: {message.splitlines()[0] if message else message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


class OneLineErrors(TyperCommand):
    """A command whose user mistakes end in one line (exit 2) and whose bugs keep their traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except user_errors() as error:
            if DEBUG["on"]:
                raise
            raise refuse(str(error) or type(error).__name__) from None


class App(typer.Typer):
    """A command group whose commands are :class:`OneLineErrors`."""

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", OneLineErrors)
        return super().command(*args, **kwargs)


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (to relaunch a command under torchrun)."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == name:
            skip = True
        elif not argument.startswith(name + "="):
            kept.append(argument)
    return kept
