"""Corpus readers: every reader yields `NestedSentence` records, which
`sentences_to_docs` turns into Docs with gold spans in a SpanGroup.

* `read_jsonl`: the yhcc, Locate-and-Label/PIQN and W2NER JSON-lines formats.
"""

from .base import NestedSentence, sentences_to_docs, split_whitespace_tokens
from .docbin import ConversionSummary, write_docbin
from .errors import FormatError, FormatWarning
from .jsonl import FORMATS, detect_format, parse_record, read_jsonl

__all__ = [
    "FORMATS",
    "ConversionSummary",
    "FormatError",
    "FormatWarning",
    "NestedSentence",
    "detect_format",
    "parse_record",
    "read_jsonl",
    "sentences_to_docs",
    "split_whitespace_tokens",
    "write_docbin",
]
