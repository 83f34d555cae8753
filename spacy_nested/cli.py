"""Command-line interface: ``python -m spacy_nested COMMAND``.

The commands only parse arguments, call the library and print; the work is
done in `spacy_nested.formats` (and, for later commands, the scoring and
visualization modules). Add a command with ``@app.command()``.
"""

import warnings
from enum import Enum
from pathlib import Path
from typing import List, Optional

import spacy
import typer

from .formats import (
    ConversionSummary,
    FormatError,
    FormatWarning,
    read_jsonl,
    sentences_to_docs,
    write_docbin,
)

app = typer.Typer(
    name="spacy-nested",
    help="Nested named entity recognition for spaCy: corpus tools.",
    no_args_is_help=True,
    add_completion=False,
)
MAX_WARNINGS_SHOWN = 5


class InputFormat(str, Enum):
    auto = "auto"
    yhcc = "yhcc"
    locate_label = "locate_label"
    w2ner = "w2ner"


class GroupBy(str, Enum):
    doc_id = "doc_id"


@app.callback()
def main() -> None:
    """Nested named entity recognition for spaCy: corpus tools."""


@app.command()
def convert(
    input_path: Path = typer.Argument(..., help="Input .jsonl file", exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help="Output .spacy file (DocBin)", dir_okay=False),
    format: InputFormat = typer.Option(InputFormat.auto, "--format", "-f", help="Input format"),
    spans_key: str = typer.Option("nested", "--spans-key", "-k", help="Key of the gold SpanGroup"),
    group_by: Optional[GroupBy] = typer.Option(
        None,
        "--group-by",
        "-g",
        help="Join consecutive sentences with the same doc_id into one Doc",
    ),
    lang: str = typer.Option("en", "--lang", "-l", help="Language code of the blank vocab"),
    split_tokens: bool = typer.Option(
        False, "--split-tokens", help="Split tokens that contain whitespace instead of failing"
    ),
) -> None:
    """Convert a nested NER JSON-lines corpus to a .spacy DocBin (all or nothing)."""
    try:
        vocab = spacy.blank(lang).vocab
    except ImportError as err:
        _fail(f"cannot create a blank '{lang}' pipeline: {err}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FormatWarning)
        try:
            sentences = list(read_jsonl(input_path, format.value, split_tokens=split_tokens))
            group = group_by.value if group_by is not None else None
            docs = list(sentences_to_docs(sentences, vocab, spans_key=spans_key, group_by=group))
        except FormatError as err:
            _fail(str(err))
    _report_warnings([str(w.message) for w in caught if issubclass(w.category, FormatWarning)])
    summary = ConversionSummary.from_docs(docs, spans_key, n_sentences=len(sentences))
    write_docbin(docs, output_path, store_user_data=True)
    typer.echo(f"Converted {input_path} -> {output_path}: {summary}")


def _report_warnings(messages: List[str]) -> None:
    for message in messages[:MAX_WARNINGS_SHOWN]:
        typer.echo(f"Warning: {message}", err=True)
    if len(messages) > MAX_WARNINGS_SHOWN:
        typer.echo(f"Warning: ... and {len(messages) - MAX_WARNINGS_SHOWN} more", err=True)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=1)
