"""Errors and warnings raised by the corpus readers.

Every problem in an input file is reported with its location, as
``"{path}:{line}: {message}"``, so that editors and terminals can jump to it.
"""

from pathlib import Path
from typing import Union


class FormatError(ValueError):
    """An input record is invalid. `line_no` is 1-based."""

    def __init__(self, path: Union[str, Path], line_no: int, message: str) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.message = message
        super().__init__(f"{self.path}:{line_no}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.line_no, self.message))


class FormatWarning(UserWarning):
    """An input record was repaired (for example a token split at whitespace)."""
