"""``python -m spacy_nested annotate MODEL INPUT OUTPUT``: only parses options, runs
`engines.annotate_model` and prints (the records, pieces and resume rules are in the
package's modules)."""
import sys
from pathlib import Path
from typing import Optional

import typer

from spacy_nested.annotation.engines import annotate_model
from spacy_nested.annotation.run import Pieces, ResumeRefused, RunSettings
from spacy_nested.cli._util import app, fail
from spacy_nested.corpora.formats.errors import FormatError

HELP = """Annotate a corpus with a pipeline into JSONL records with character offsets, resumably.

INPUT is a .txt file (one doc per line), a .jsonl file (the text under --text-key; the other
fields pass through), a .spacy DocBin, or a folder of these; every file UTF-8. Each output
record has "index" (the record's 0-based position in its file: a line, or a DocBin's doc),
"file" (folder inputs), the passed-through fields, the text with --include-text, and "spans"
([{"start", "end", "label", "score"}], character offsets, sorted by start, end and label).
OUTPUT.jsonl is one file; any other OUTPUT is a folder of pieces part-00000.jsonl, ...

A killed run is finished by --resume, which goes on with the settings the run started with
(recorded in run.json beside the pieces: --batch-size too, since an int8 pipeline's spans depend
on the batch) and refuses when the input or the pipeline changed.
"""
DEFAULT = RunSettings()  # the options that change the records default to RunSettings' values


@app.command("annotate", help=HELP)
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    input_path: Path = typer.Argument(..., help="A .txt, .jsonl or .spacy file, or a folder of them", exists=True),
    output: Path = typer.Argument(..., help="OUTPUT.jsonl (one file) or a folder of JSONL pieces"),
    text_key: str = typer.Option(
        DEFAULT.text_key, "--text-key", help="JSONL field of the text (the output's too, with --include-text)"
    ),
    spans_key: str = typer.Option(DEFAULT.spans_key, "--spans-key", "-k", help="Span group to write"),
    include_text: bool = typer.Option(DEFAULT.include_text, "--include-text", help="Keep each doc's text in its output record"),
    batch_size: int = typer.Option(
        DEFAULT.batch_size, "--batch-size", "-b", min=1, help="Docs per nlp.pipe batch (recorded: int8 spans depend on it)"
    ),
    n_process: int = typer.Option(1, "--n-process", "-n"),
    piece_size: int = typer.Option(DEFAULT.piece_size, "--piece-size", min=1, help="Input records per output piece"),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=1, help="Longest text in characters (default: the pipeline's nlp.max_length)"
    ),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run with the settings it started with"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid records and list them in OUTPUT.skipped.txt"),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or dask (a Dask cluster)"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address (--engine dask; none: a local cluster of --n-process workers)"
    ),
) -> None:
    if engine not in ("local", "dask"):
        raise typer.BadParameter("choose local or dask", param_hint="--engine")
    settings = RunSettings(piece_size, text_key, spans_key, include_text, max_length, batch_size)
    try:
        outcome = annotate_model(
            model, input_path, output, settings, engine=engine, scheduler=scheduler,
            n_process=n_process, resume=resume, skip_invalid=skip_invalid, progress=sys.stderr.isatty(),
            say=lambda message: typer.echo(message, err=True),
        )  # fmt: skip
    except ImportError as err:
        fail(f'{err}: --engine dask needs `pip install -e ".[dask]"`')
    except FormatError as err:
        fail(f"{err}{_stopped_hint(output)}")
    except (ResumeRefused, FileExistsError, OSError) as err:
        fail(str(err))
    typer.echo(f"Annotated {outcome.written} docs into {output} in {outcome.seconds:.2f} s (after loading the pipeline here)")


def _stopped_hint(output: Path) -> str:
    """What a user can do when a bad record stopped a run that had started writing."""
    pieces = Pieces(output)
    if not pieces.started():
        return ""
    n = pieces.n_complete()
    return (
        f"\nThe run stopped there and kept its {n} complete piece{'s' * (n != 1)} in {pieces.folder}: "
        "--resume --skip-invalid goes on past it; after editing the input, remove the pieces to start over."
    )
