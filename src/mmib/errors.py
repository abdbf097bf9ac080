"""The package's own error types for a user's mistakes.

The command line prints an exception of these types (and the operating system's file errors, ``OSError``:
a path that is missing, a folder that cannot be written) as one ``error:`` line with exit code 2; anything
else is a bug in mmib and keeps its traceback. Each type also derives from the built-in its callers would
catch (``ValueError``, ``RuntimeError``), so code written against those keeps working.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave: a setting, an argument, a file's content, an input to prediction."""


class SettingError(UserError, ValueError):
    """A value no run can use: a setting, an option, a file that is not what its name says."""
