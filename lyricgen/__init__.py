"""lyricgen: fast, reproducible character-level language-model experiments on song lyrics."""


class UserError(Exception):
    """A problem with the user's input or config: printed as one line, never as a traceback."""


class Diverged(UserError):
    """Training produced a non-finite loss or gradient."""
