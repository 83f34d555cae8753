"""The ``convert`` command: ``python -m spacy_nested convert INPUT OUTPUT``.

It only parses arguments, calls `spacy_nested.corpora.formats` and prints. Like every
command (the others: `spacy_nested.evaluation.report`, `spacy_nested.cli.annotate`, ...),
it registers on the one `app` of `spacy_nested.cli._util` with
``@app.command("name")`` and fails through its `fail`.
"""

import warnings
from enum import Enum
from itertools import chain
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import spacy
import typer
from spacy.language import Language

from spacy_nested.cli._util import app, fail
from spacy_nested.corpora.formats import (
    FORMAT_NAMES,
    ConversionSummary,
    FormatError,
    FormatWarning,
    NestedSentence,
    NonEntityLines,
    Skipped,
    detect_tag_columns,
    input_files,
    read_brat,
    read_conll,
    read_genia_xml,
    read_jsonl,
    sentences_to_docs,
    sniff_format,
    write_docbin,
)

MAX_WARNINGS_SHOWN = 5
MAX_SKIPPED_SHOWN = 20  # on the terminal; --skip-invalid's file lists every one
OUTPUT_SUFFIX = ".spacy"


class InputFormat(str, Enum):
    auto = "auto"
    yhcc = "yhcc"
    locate_label = "locate_label"
    w2ner = "w2ner"
    conll = "conll"
    brat = "brat"
    genia_xml = "genia-xml"


JSONL_FORMATS = (InputFormat.auto, InputFormat.yhcc, InputFormat.locate_label, InputFormat.w2ner)
# The files a directory stands for (the brat and genia-xml readers read directories).
DIRECTORY_PATTERNS: Dict[InputFormat, Tuple[str, ...]] = {
    **{format: ("*.jsonl",) for format in JSONL_FORMATS},
    InputFormat.conll: ("*.conll", "*.txt"),
}
OPTION_FORMATS: Dict[str, Tuple[InputFormat, ...]] = {
    "--split-tokens": JSONL_FORMATS,
    "--scheme": (InputFormat.conll,),
    "--tag-columns": (InputFormat.conll,),
    "--doc-ids": (InputFormat.genia_xml,),
    "--skip-invalid": (*JSONL_FORMATS, InputFormat.conll, InputFormat.brat),
    "--skipped-file": (*JSONL_FORMATS, InputFormat.conll, InputFormat.brat),
}


class Scheme(str, Enum):
    auto = "auto"
    iob1 = "iob1"
    iob2 = "iob2"


class GroupBy(str, Enum):
    doc_id = "doc_id"


@app.command("convert")
def convert(
    input_path: Path = typer.Argument(
        ...,
        help="Input file, or a directory: all its *.jsonl (JSON-lines formats), "
        "*.conll and *.txt (conll), .txt/.ann pairs (brat) or *.xml (genia-xml)",
        exists=True,
        dir_okay=True,
    ),
    output_path: Path = typer.Argument(..., help="Output .spacy file (DocBin)", dir_okay=False),
    format: InputFormat = typer.Option(
        InputFormat.auto,
        "--format",
        "-f",
        help="Input format; auto reads the JSON-lines formats and names the --format of CoNLL, BRAT and XML input",
    ),
    spans_key: str = typer.Option("nested", "--spans-key", "-k", help="Key of the gold SpanGroup"),
    group_by: Optional[GroupBy] = typer.Option(
        None,
        "--group-by",
        "-g",
        help="Join consecutive sentences with the same doc_id into one Doc",
    ),
    lang: str = typer.Option(
        "en", "--lang", "-l", help="Language code of the blank pipeline (vocab; brat: tokenizer)"
    ),
    split_tokens: bool = typer.Option(
        False,
        "--split-tokens/--no-split-tokens",
        help="JSON lines: split tokens that contain whitespace instead of failing "
        "(--no-split-tokens, the default, is accepted for every format)",
    ),
    scheme: Optional[Scheme] = typer.Option(
        None, "--scheme", help="conll: tagging scheme (default auto: IOB1 or IOB2)"
    ),
    tag_columns: Optional[int] = typer.Option(
        None,
        "--tag-columns",
        min=1,
        help="conll: the last N columns are tag columns, one per nesting layer (default: the trailing "
        "columns of IOB tags, CoNLL-2003's chunk column excepted; an ambiguous column is an error)",
    ),
    doc_ids: Optional[Path] = typer.Option(
        None,
        "--doc-ids",
        exists=True,
        dir_okay=False,
        help="genia-xml: keep only the documents listed in this file (MEDLINE:<id> lines)",
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Skip invalid records (JSON lines: the line; conll: the sentence; brat: the .ann "
        "line, or the document) instead of failing on the first, and write every one, with "
        "its reason, to the --skipped-file. Not for genia-xml, whose XML cannot be read past an error",
    ),
    skipped_file: Optional[Path] = typer.Option(
        None,
        "--skipped-file",
        dir_okay=False,
        help="With --skip-invalid: where the list of skipped records goes "
        "(default: OUTPUT_PATH with .skipped.txt for .spacy)",
    ),
) -> None:
    """Convert a nested NER corpus to a .spacy DocBin.

    All or nothing: the first invalid record fails the conversion and writes
    nothing, unless --skip-invalid is given. An input without any sentence
    always fails.
    """
    given = {
        "--split-tokens": split_tokens,
        "--scheme": scheme is not None,
        "--tag-columns": tag_columns is not None,
        "--doc-ids": doc_ids is not None,
        "--skip-invalid": skip_invalid,
        "--skipped-file": skipped_file is not None,
    }
    _check_options(format, given)
    if skipped_file is not None and not skip_invalid:
        raise typer.BadParameter("needs --skip-invalid", param_hint="--skipped-file")
    convert_corpus(
        input_path,
        output_path,
        format,
        spans_key=spans_key,
        group_by=group_by,
        lang=lang,
        split_tokens=split_tokens,
        scheme=scheme,
        tag_columns=tag_columns,
        doc_ids=doc_ids,
        skip_invalid=skip_invalid,
        skipped_file=skipped_file,
    )


def convert_corpus(
    input_path: Path,
    output_path: Path,
    format: InputFormat = InputFormat.auto,
    *,
    spans_key: str = "nested",
    group_by: Optional[GroupBy] = None,
    lang: str = "en",
    split_tokens: bool = False,
    scheme: Optional[Scheme] = None,
    tag_columns: Optional[int] = None,
    doc_ids: Optional[Path] = None,
    skip_invalid: bool = False,
    skipped_file: Optional[Path] = None,
) -> ConversionSummary:
    """What ``convert`` does once its options are checked (also run by the project's ``scripts/prepare_data.py``).

    Prints as the command does and exits through `fail` on an error: the
    counts of what was written (docs, sentences, spans), then what was skipped
    (for BRAT, also the annotation lines that are not entities, by kind).
    RETURNS: the counts of what was written.
    """
    if output_path.suffix != OUTPUT_SUFFIX:
        raise typer.BadParameter(
            f"{output_path} does not end in {OUTPUT_SUFFIX}: the output is a DocBin, and spaCy's "
            f"corpus reader reads only *{OUTPUT_SUFFIX} files (any other name gives an empty corpus)",
            param_hint="OUTPUT_PATH",
        )
    if format in JSONL_FORMATS:
        _check_looks_like_jsonl(input_path)
    try:
        nlp = spacy.blank(lang)
    except ImportError as err:
        fail(f"cannot create a blank '{lang}' pipeline: {err}")
    skipped = Skipped(skip_invalid=skip_invalid)
    non_entities = NonEntityLines()
    try:
        reader = _read(
            input_path,
            format,
            nlp,
            skipped,
            non_entities,
            split_tokens=split_tokens,
            scheme=(scheme or Scheme.auto).value,
            tag_columns=tag_columns,
            doc_ids=doc_ids,
        )
    except (ValueError, FileNotFoundError) as err:  # an input path the reader cannot use
        fail(str(err))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FormatWarning)
        try:
            sentences = list(reader)
            group = group_by.value if group_by is not None else None
            docs = list(
                sentences_to_docs(sentences, nlp.vocab, spans_key=spans_key, group_by=group)
            )
        except (FormatError, OSError) as err:  # OSError: an unreadable input
            fail(str(err))
    _report_warnings([str(w.message) for w in caught if issubclass(w.category, FormatWarning)])
    skipped_messages = [str(error) for error in skipped.invalid]
    listed = ""
    if skip_invalid:
        skipped_path = skipped_file if skipped_file is not None else default_skipped_file(output_path)
        _write_skipped(skipped_messages, skipped_path)
        if skipped_messages:
            listed = f"; all {len(skipped_messages):,} listed in {skipped_path}"
    _report_skipped(skipped_messages)
    if not sentences:
        fail(f"{input_path}: no sentences found (skipped {skipped}{listed})")
    summary = ConversionSummary.from_docs(docs, spans_key)
    write_docbin(docs, output_path, store_user_data=True)
    typer.echo(f"Converted {input_path} -> {output_path}: {summary}")
    if skipped:
        typer.echo(f"Skipped {skipped} (see above{listed})")
    if non_entities:
        typer.echo(f"Skipped standoff lines that are not entities: {non_entities}")
    return summary


def default_skipped_file(output_path: Path) -> Path:
    """Where --skip-invalid lists the skipped records: ``dev.spacy`` -> ``dev.skipped.txt``."""
    return output_path.with_suffix(".skipped.txt")


def _write_skipped(messages: List[str], path: Path) -> None:
    """One skipped record a line (``file:line: reason``); an empty file when none was skipped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{message}\n" for message in messages), encoding="utf8")


def _check_looks_like_jsonl(path: Path) -> None:
    """Fail with the --format to use when the input is CoNLL, BRAT or XML rather than JSON lines."""
    detected = sniff_format(path)
    if detected is not None and detected != "jsonl":
        fail(f"{path} looks like {FORMAT_NAMES[detected]}, not JSON lines: use --format {detected}")


def _check_options(format: InputFormat, given: Dict[str, bool]) -> None:
    """Reject an option given for a format it does not apply to (exit code 2)."""
    for option, is_given in given.items():
        formats = OPTION_FORMATS[option]
        if is_given and format not in formats:
            names = ", ".join(value.value for value in formats)
            raise typer.BadParameter(f"only applies to --format {names}", param_hint=option)


def _read(
    path: Path,
    format: InputFormat,
    nlp: Language,
    skipped: Skipped,
    non_entities: NonEntityLines,
    *,
    split_tokens: bool,
    scheme: str,
    tag_columns: Optional[int],
    doc_ids: Optional[Path],
) -> Iterator[NestedSentence]:
    """The sentences of `path`, a file or a directory.

    `non_entities` counts the BRAT lines that are not entities.
    RAISES (ValueError): at once, for a path the reader cannot use.
    RAISES (FormatError): on the first invalid record, when iteration gets
        there, unless `skipped` skips invalid records.
    """
    if format == InputFormat.brat:
        return read_brat(path, nlp, skipped=skipped, non_entities=non_entities)
    if format == InputFormat.genia_xml:
        return read_genia_xml(path, doc_ids=doc_ids)
    files = input_files(path, DIRECTORY_PATTERNS[format])
    if format == InputFormat.conll:
        return chain.from_iterable(_read_conll(f, scheme, tag_columns, skipped) for f in files)
    return chain.from_iterable(
        read_jsonl(f, format.value, split_tokens=split_tokens, skipped=skipped) for f in files
    )


def _read_conll(
    path: Path, scheme: str, tag_columns: Optional[int], skipped: Skipped
) -> Iterator[NestedSentence]:
    """One CoNLL file; without --tag-columns, its layers are counted and said when more than one."""
    if tag_columns is None:
        layout = detect_tag_columns(path)
        tag_columns = layout.tag_columns
        columns = layout.layer_columns
        if tag_columns > 1:
            names = ", ".join(map(str, columns[:-1])) + f" and {columns[-1]}"
            typer.echo(
                f"Note: {path}: columns {names} hold only IOB tags: read as {tag_columns} nesting layers "
                f"(--tag-columns {tag_columns})",
                err=True,
            )
        if layout.chunk_column is not None:
            types = ", ".join(layout.chunk_types)
            typer.echo(
                f"Note: {path}: column {layout.chunk_column} holds chunk tags ({types}): read as data, "
                f"not as entities (--tag-columns {tag_columns + 1} reads it as a layer)",
                err=True,
            )
    return read_conll(path, scheme, tag_columns=tag_columns, skipped=skipped)


def _report_warnings(messages: List[str]) -> None:
    _report("Warning", messages, MAX_WARNINGS_SHOWN)


def _report_skipped(messages: List[str]) -> None:
    """List the first records that --skip-invalid skipped, with why, to stderr (all are in its file)."""
    _report("Skipped", messages, MAX_SKIPPED_SHOWN)


def _report(prefix: str, messages: List[str], limit: int) -> None:
    """Print the first `limit` messages to stderr, then how many more there are."""
    for message in messages[:limit]:
        typer.echo(f"{prefix}: {message}", err=True)
    if len(messages) > limit:
        typer.echo(f"{prefix}: ... and {len(messages) - limit} more", err=True)
