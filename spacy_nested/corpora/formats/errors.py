"""Errors and warnings raised by the corpus readers, and what they skip.

Every problem in an input file is reported with its location, as
``"{path}:{line}: {message}"`` or, where a column is known (a JSON syntax
error, a byte that is not UTF-8), ``"{path}:{line}:{column}: {message}"``, so
that editors and terminals can jump to it; a problem with a whole file (one
without any sentence) as ``"{path}: {message}"``. Lines and columns are
1-based; a column counts characters (bytes where the line is not UTF-8).

By default a reader raises `FormatError` on the first invalid record. Given a
`Skipped` with ``skip_invalid=True``, it instead leaves the invalid record out,
appends its error to ``skipped.invalid`` and goes on (`skip_or_raise`). The
same `Skipped` counts the BRAT entities that are valid but cannot become token
spans, which are always skipped.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple, Type, Union

NO_SENTENCES = "no sentences found"


class FormatError(ValueError):
    """An input record is invalid. `line_no` and `column` are 1-based; None for a whole file (line)."""

    def __init__(self, path: Union[str, Path], line_no: Optional[int], message: str, column: Optional[int] = None) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.column = column
        self.message = message
        location = self.path if line_no is None else f"{self.path}:{line_no}"
        if line_no is not None and column is not None:
            location += f":{column}"
        super().__init__(f"{location}: {message}")

    def __reduce__(self) -> Tuple[Type["FormatError"], Tuple[str, Optional[int], str, Optional[int]]]:
        return (type(self), (self.path, self.line_no, self.message, self.column))

    @classmethod
    def at_line(cls, path: Union[str, Path], line_no: int, err: ValueError) -> "FormatError":
        """The error of line ``line_no`` raised as ``err``, at its column when it is a `LineError`."""
        if isinstance(err, LineError):
            return cls(path, line_no, err.message, err.column)
        return cls(path, line_no, str(err))


class LineError(ValueError):
    """A problem with one line, at a 1-based ``column`` when known; the reader adds file and line
    (``FormatError(path, line_no, err.message, err.column)``)."""

    def __init__(self, message: str, column: Optional[int] = None) -> None:
        self.message = message
        self.column = column
        super().__init__(message)


def decode_line(raw: bytes, *, first: bool = False) -> str:
    """One line of a file read in binary mode, as text without its line ending.

    RAISES (LineError): ``not UTF-8 (byte 0xff at column N)``, N the 1-based byte column.
    ``first``: the file's first line, whose UTF-8 byte order mark is dropped.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = err.start + 1
        raise LineError(f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {column})", column) from None
    if first:
        text = text.lstrip("\ufeff")
    return text.rstrip("\r\n")


def parse_json_line(text: str) -> Any:
    """The JSON value of one line. RAISES (LineError): ``invalid JSON: ...`` at its column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        hint = "" if text.rstrip().endswith(("}", "]")) else " (truncated line?)"
        raise LineError(f"invalid JSON: {err.msg}{hint}", err.colno) from None


class FormatWarning(UserWarning):
    """An input record was repaired (for example a token split at whitespace)."""


@dataclass
class Skipped:
    """What readers left out instead of failing; the caller owns it, readers add to it.

    skip_invalid (bool): skip invalid records (a JSON line, a CoNLL sentence,
        a BRAT ``.ann`` line or document) instead of raising their FormatError.
    invalid (List[FormatError]): the error of every skipped invalid record.
    misaligned, discontinuous (int): BRAT entities that are valid but do not
        align to token boundaries, or are discontinuous; always skipped.
    """

    skip_invalid: bool = False
    invalid: List[FormatError] = field(default_factory=list)
    misaligned: int = 0
    discontinuous: int = 0

    def __bool__(self) -> bool:
        return bool(self.invalid or self.misaligned or self.discontinuous)

    def __str__(self) -> str:
        parts = []
        if self.misaligned or self.discontinuous:
            parts.append(
                f"{self.misaligned} misaligned, {self.discontinuous} discontinuous entities"
            )
        if self.invalid:
            n_invalid = len(self.invalid)
            parts.append(f"{n_invalid} invalid record{'s' if n_invalid != 1 else ''}")
        return ", ".join(parts) or "nothing"


def skip_or_raise(error: FormatError, skipped: Optional[Skipped]) -> None:
    """Record `error` in `skipped` if it skips invalid records; else raise it.

    Raised without context, so that the error is the same when this is called
    while handling the exception that it reports.
    """
    if skipped is None or not skipped.skip_invalid:
        raise error from None
    skipped.invalid.append(error)
