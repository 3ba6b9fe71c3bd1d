"""lyricgen: fast, reproducible character-level language-model experiments on song lyrics."""

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input or config: printed as one line, never as a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class Diverged(UserError):
    """Training produced a non-finite loss or gradient, or a loss far above a uniform guess."""

    exit_code = 1


class Interrupted(UserError):
    """Training was stopped by a signal after saving its state (exit code 128 + the signal's number)."""


class NotRequeued(Interrupted):
    """A cluster job's time ran out and it may not be requeued again (hydra.launcher.max_num_timeout):
    its state is saved, and resume= continues it."""


def one_line_errors(main: Callable[..., T]) -> Callable[..., T]:
    """For the command-line entry points: a UserError becomes `error: ...` on stderr and its exit code."""

    @functools.wraps(main)
    def guarded(*args: object, **kwargs: object) -> T:
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)

    return guarded
