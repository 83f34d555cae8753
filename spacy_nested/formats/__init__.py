"""Corpus readers: every reader yields `NestedSentence` records, which
`sentences_to_docs` turns into Docs with gold spans in a SpanGroup.

* `read_jsonl`: the yhcc, Locate-and-Label/PIQN and W2NER JSON-lines formats.
* `read_conll`: CoNLL column files (CoNLL-2003; IOB1/IOB2, one tag column
  per nesting layer).
* `read_brat`: BRAT standoff ``.txt`` + ``.ann`` pairs.
* `read_genia_xml`: the GENIA 3.02 XML corpus.

A file without any sentence is a `FormatError` for every reader. Pass
``skipped=Skipped(skip_invalid=True)`` to the jsonl, conll and brat readers
to skip invalid records (collected in ``skipped.invalid``) instead of failing.
"""

from .base import NestedSentence, input_files, sentences_to_docs, split_whitespace_tokens
from .brat import read_brat
from .conll import SCHEMES as CONLL_SCHEMES
from .conll import read_conll
from .docbin import ConversionSummary, write_docbin
from .errors import FormatError, FormatWarning, Skipped
from .genia_xml import read_genia_xml
from .jsonl import FORMATS, detect_format, parse_record, read_jsonl

__all__ = [
    "CONLL_SCHEMES",
    "FORMATS",
    "ConversionSummary",
    "FormatError",
    "FormatWarning",
    "NestedSentence",
    "Skipped",
    "detect_format",
    "input_files",
    "parse_record",
    "read_brat",
    "read_conll",
    "read_genia_xml",
    "read_jsonl",
    "sentences_to_docs",
    "split_whitespace_tokens",
    "write_docbin",
]
