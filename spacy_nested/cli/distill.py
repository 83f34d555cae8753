"""``python -m spacy_nested distill TEACHER STUDENT_CONFIG OUTPUT --train T --dev D``: only parses options,
writes the corpus (`spacy_nested.distillation`) and runs ``spacy train`` on it."""
import gc
from pathlib import Path
from typing import Optional

import spacy
import typer
from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train as spacy_train

from spacy_nested.cli._util import app, fail
from spacy_nested.distillation.corpus import (
    TRAIN_FILE,
    UNLABELED_FILE,
    DistillSettings,
    student_overrides,
    student_spans_key,
    write_corpus,
)
from spacy_nested.distillation.teacher import TEACHER_KEY, load_teacher

HELP = f"""Train a student (any training config) on a teacher's predictions.

The teacher (a trained pipeline or ensemble) predicts on the --train docs (their own tokens) and on
--unlabeled text (.txt, .jsonl, .spacy or a folder, read as annotate reads it). Its spans at or above
--teacher-threshold (default: every span it writes) become targets under the student's spans key:
on the training docs merged with the gold (every gold span, plus each teacher span whose boundaries
no gold span has), on unlabeled docs alone. All its spans and scores are kept under '{TEACHER_KEY}'.

Each target keeps its score (1.0 for gold, the teacher's for its spans): a student trains on hard
targets unless its detector's soft_targets switch is on (docs/distill.md#soft-targets).

OUTPUT/corpus/ gets {TRAIN_FILE}, {UNLABELED_FILE} and distill.json (teacher fingerprint, threshold,
inputs, counts), all or nothing; then `spacy train STUDENT_CONFIG --output OUTPUT/model --paths.train
OUTPUT/corpus --paths.dev DEV` with the extra overrides given (--training.max_steps 20, ...).
An existing corpus made with the same teacher, inputs and settings is reused.
"""


@app.command("distill", help=HELP, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def distill_cli(
    ctx: typer.Context,
    teacher: str = typer.Argument(..., help="The teacher: a trained pipeline's folder or package name"),
    student_config: Path = typer.Argument(..., help="The student's training config", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Folder for corpus/ and model/"),
    train: Path = typer.Option(..., "--train", help="Gold training docs (.spacy)", exists=True, dir_okay=False),
    dev: Path = typer.Option(..., "--dev", help="Gold dev docs (.spacy), for the student's evaluation", exists=True),
    unlabeled: Optional[Path] = typer.Option(
        None, "--unlabeled", help="Unlabeled text: .txt, .jsonl, .spacy or a folder", exists=True
    ),
    teacher_threshold: Optional[float] = typer.Option(
        None, "--teacher-threshold", min=0.0, max=1.0, help="Keep the teacher's spans scoring at least this (default: all)"
    ),
    teacher_key: Optional[str] = typer.Option(None, "--teacher-key", help="The key the teacher writes (default: its last)"),
    spans_key: Optional[str] = typer.Option(None, "--spans-key", help="The student's key (default: from STUDENT_CONFIG)"),
    text_key: str = typer.Option("text", "--text-key", help="JSONL field of the unlabeled text"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip unreadable unlabeled records (counted)"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="Docs per teacher batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU for the teacher and the training (-1: CPU)"),
    corpus_only: bool = typer.Option(False, "--corpus-only", help="Write OUTPUT/corpus and stop"),
    train_targets: str = typer.Option(
        "merge", "--train-targets", help="The training docs' targets: merge (gold + teacher spans) or gold (the gold alone)"
    ),
) -> None:
    overrides = parse_config_overrides(ctx.args)
    corpus, model = output / "corpus", output / "model"
    try:
        key = spans_key or student_spans_key(student_config, overrides)
        settings = DistillSettings(key, text_key, batch_size, skip_invalid, train_targets)
        train_overrides = student_overrides(corpus, dev, overrides)
    except (ValueError, OSError) as err:
        fail(str(err))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        found = load_teacher(teacher, teacher_key, teacher_threshold)
        record = write_corpus(found, train, corpus, settings, unlabeled=unlabeled, say=lambda m: typer.echo(m, err=True))
    except (ValueError, OSError) as err:  # TeacherError, FormatError, FileExistsError
        fail(str(err))
    del found
    gc.collect()  # the teacher's memory back before the student's training
    for name, counts in record.counts.items():
        typer.echo(
            f"{corpus / name}: {counts['docs']} docs, {counts['words']} words, {counts['spans']} target spans under "
            f"'{key}' ({counts['gold_spans']} gold, {counts['teacher_spans']} from the teacher)"
        )
    extra = " ".join(ctx.args)
    command = f"python -m spacy train {student_config} --output {model} --paths.train {corpus} --paths.dev {dev}"
    command += f" --gpu-id {gpu_id}" * (gpu_id >= 0) + f" {extra}" * bool(extra)
    if corpus_only:
        typer.echo(f"Corpus written to {corpus}; train the student with:\n  {command}")
        return
    typer.echo(f"Training the student: {command}")
    spacy_train(student_config, model, use_gpu=gpu_id, overrides=train_overrides)
