"""Corpus readers: every reader yields `NestedSentence` records, which
`sentences_to_docs` turns into Docs with gold spans in a SpanGroup.

* `read_jsonl`: the yhcc, Locate-and-Label/PIQN and W2NER JSON-lines formats.
* `read_conll`: CoNLL column files (CoNLL-2003; IOB1/IOB2, one tag column
  per nesting layer, counted by `detect_tag_columns` unless given).
* `read_brat`: BRAT standoff ``.txt`` + ``.ann`` pairs, one sentence a line;
  the annotations that are not entities are counted in `NonEntityLines`.
* `read_genia_xml`: the GENIA 3.02 XML corpus.

`sniff_format` names the reader an input looks like (``convert --format
auto`` uses it to point at the right ``--format``).

A file without any sentence is a `FormatError` for every reader. Pass
``skipped=Skipped(skip_invalid=True)`` to the jsonl, conll and brat readers
to skip invalid records (collected in ``skipped.invalid``) instead of failing.
"""

from spacy_nested.corpora.formats.base import NestedSentence, input_files, sentences_to_docs, split_whitespace_tokens
from spacy_nested.corpora.formats.brat import NonEntityLines, read_brat
from spacy_nested.corpora.formats.conll import SCHEMES as CONLL_SCHEMES
from spacy_nested.corpora.formats.conll import TagLayout, detect_tag_columns, read_conll
from spacy_nested.corpora.formats.detect import FORMAT_NAMES, sniff_format
from spacy_nested.corpora.formats.docbin import ConversionSummary, write_docbin
from spacy_nested.corpora.formats.errors import FormatError, FormatWarning, Skipped
from spacy_nested.corpora.formats.genia_xml import read_genia_xml
from spacy_nested.corpora.formats.jsonl import FORMATS, detect_format, parse_record, read_jsonl

__all__ = [
    "CONLL_SCHEMES",
    "FORMATS",
    "FORMAT_NAMES",
    "ConversionSummary",
    "FormatError",
    "FormatWarning",
    "NestedSentence",
    "NonEntityLines",
    "Skipped",
    "TagLayout",
    "detect_format",
    "detect_tag_columns",
    "input_files",
    "parse_record",
    "read_brat",
    "read_conll",
    "read_genia_xml",
    "read_jsonl",
    "sentences_to_docs",
    "sniff_format",
    "split_whitespace_tokens",
    "write_docbin",
]
