"""The one exception type that reaches the user as a single error line.

Anything raised as :class:`SynthdataError` is bad input or a refused operation: the CLI prints
its message on one line and exits non-zero. Any other exception is a bug and keeps its traceback.
"""


class SynthdataError(Exception):
    """A user-facing error; the message names the file (or row) and the problem."""


class RecipeError(SynthdataError):
    """A recipe file is malformed, misspelled or holds a value of the wrong type."""


class DataError(SynthdataError):
    """An input file, archive member or table row is unusable."""


class ChecksumError(DataError):
    """A fetched or mirrored file does not have the sha256 it is pinned to."""
