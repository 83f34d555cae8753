"""Which reader an input is for: what ``convert --format auto`` recognises.

``--format auto`` reads the JSON-lines formats (each record says which of
them it is). Before reading, `sniff_format` looks at the input, so that a
GENIA XML file, a BRAT folder or a CoNLL file is named as such, with the
``--format`` that reads it, instead of failing as invalid JSON:

* a directory: ``*.jsonl`` files make it JSON lines; else ``*.ann`` files
  BRAT, ``*.xml`` files XML, and ``*.conll`` files or ``*.txt`` files that
  look like CoNLL (below) CoNLL;
* a file: ``.ann``, or ``.txt`` beside an ``.ann`` of the same name, is BRAT;
  otherwise its first non-blank line decides: ``<`` starts XML, ``{`` or
  ``[`` JSON lines; CoNLL when its first token lines (up to `CONLL_LINES`)
  have at least two whitespace-separated columns and end in a tag (``O``,
  ``B-X``, ``I-X``, and the BIOES/BILOU prefixes, which the CoNLL reader then
  reports), ``-DOCSTART-`` lines aside.

Only the first `SNIFF_BYTES` of a file are read.
"""

from pathlib import Path
from typing import Dict, List, Optional, Union

__all__ = ["FORMAT_NAMES", "sniff_format"]

SNIFF_BYTES = 65536
CONLL_LINES = 20
TAG_PREFIXES = ("B", "I", "E", "S", "L", "U")
# What each value of `sniff_format` is, for messages.
FORMAT_NAMES: Dict[str, str] = {
    "jsonl": "JSON lines",
    "conll": "CoNLL columns",
    "brat": "BRAT standoff (.txt + .ann)",
    "genia-xml": "XML (the GENIA 3.02 corpus format)",
}


def sniff_format(path: Union[str, Path]) -> Optional[str]:
    """"jsonl", "conll", "brat" or "genia-xml" (the ``--format`` values), or None.

    None: a file or directory that looks like none of them (or cannot be read).
    """
    path = Path(path)
    if path.is_dir():
        return _sniff_directory(path)
    if path.suffix == ".ann" or (path.suffix == ".txt" and path.with_suffix(".ann").is_file()):
        return "brat"
    return _sniff_file(path)


def _sniff_directory(path: Path) -> Optional[str]:
    for pattern, format in (("*.jsonl", "jsonl"), ("*.ann", "brat"), ("*.xml", "genia-xml"), ("*.conll", "conll")):
        if any(file_.is_file() for file_ in path.glob(pattern)):
            return format
    if any(_sniff_file(file_) == "conll" for file_ in sorted(path.glob("*.txt")) if file_.is_file()):
        return "conll"
    return None


def _sniff_file(path: Path) -> Optional[str]:
    try:
        with path.open("rb") as file_:
            head = file_.read(SNIFF_BYTES)
    except OSError:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [line.strip() for line in text.splitlines()]
    if len(head) == SNIFF_BYTES and lines:
        lines.pop()  # maybe cut short
    lines = [line for line in lines if line]
    if not lines:
        return None
    if lines[0].startswith("<"):
        return "genia-xml"
    if lines[0].startswith(("{", "[")):
        return "jsonl"
    return "conll" if _looks_like_conll(lines[:CONLL_LINES]) else None


def _looks_like_conll(lines: List[str]) -> bool:
    token_lines = [line.split() for line in lines if not line.startswith("-DOCSTART-")]
    return bool(token_lines) and all(len(columns) >= 2 and _is_tag(columns[-1]) for columns in token_lines)


def _is_tag(tag: str) -> bool:
    prefix, dash, label = tag.partition("-")
    return tag == "O" or (prefix in TAG_PREFIXES and bool(dash) and bool(label))
