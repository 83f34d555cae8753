"""``python -m spacy_nested combine-pipelines OUTPUT KEY=MODEL KEY=MODEL ...``: any trained detectors, one ensemble.

    python -m spacy_nested combine-pipelines training/seeds \\
        nested_pr=training/pr/model-tuned nested_ll1=training/ll1/model-tuned nested_ll2=training/ll2/model-tuned

Each ``KEY=MODEL`` is a trained pipeline holding exactly one detector of this
package (``locate_label_ner``, ``boundary_offset_ner``, ``proposer_regressor_ner``);
inside the ensemble that detector writes ``KEY``. The same detector may come
several times (seeds, configs): ``build-ensemble`` combines one pipeline per
detector of the project, this combines any. Setup (b) of
``spacy_nested.pipeline.ensemble``: the first pipeline is the base, its detector's
``spans_key`` overridden at load (``spacy.load(..., config=...)``, so the saved
config says it too); each other pipeline is loaded with its key, its detector
made to own a copy of the encoder it listens to (``replace_listeners``: spaCy's
``tok2vec`` or ``transformer``, whatever it is called) and sourced, under its own
pipe name or, where the pipeline already has a pipe of that name, under its key.
Each member therefore predicts exactly what its own pipeline predicts. Then a
``nested_ensemble`` of the keys in the order given (default settings: tune them
with ``tune-ensemble``), its members checked (keys, labels), and the pipeline
written to OUTPUT all or nothing.
"""
from pathlib import Path
from typing import List, Sequence, Tuple

import spacy
import typer
from spacy.language import Language
from wasabi import msg

from ._cli_util import app, fail
from .ensemble_cli import _write_atomically

DETECTOR_FACTORIES = ("locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner")


def detector_pipe(model: Path) -> str:
    """The name of the one detector of this package in the pipeline at `model` (read from its config, not loaded).

    RAISES (ValueError): no detector or several, naming the pipeline's pipes.
    """
    config = spacy.util.load_config(Path(model) / "config.cfg")
    pipes = config["nlp"]["pipeline"]
    found = [p for p in pipes if config["components"].get(p, {}).get("factory") in DETECTOR_FACTORIES]
    if len(found) != 1:
        raise ValueError(
            f"{model}: an ensemble member is a pipeline with exactly one detector of {list(DETECTOR_FACTORIES)}, "
            f"this one has {found or 'none'} (pipes {pipes})"
        )
    return found[0]


def listened_encoders(nlp: Language, pipe_name: str) -> List[str]:
    """The pipes (a ``tok2vec``, a ``transformer``) that pipe `pipe_name` listens to."""
    return [name for name, pipe in nlp.pipeline if getattr(pipe, "listener_map", {}).get(pipe_name)]


def combine_pipelines(members: Sequence[Tuple[str, Path]], spans_key: str = "nested") -> Language:
    """One pipeline: the detectors of the `members` pipelines, each writing its key, then a ``nested_ensemble``
    writing `spans_key` (module docstring). Returns it unsaved.

    RAISES (ValueError): fewer than two members, a repeated key or one equal to `spans_key`, a
        missing model folder (all of them named), a pipeline without exactly one detector, members
        whose labels differ.
    """
    keys = [key for key, _ in members]
    if len(members) < 2 or len(set(keys)) != len(keys):
        raise ValueError(f"an ensemble needs at least two members with different keys, got {keys}")
    if spans_key in keys:
        raise ValueError(f"the ensemble writes '{spans_key}': give its members other keys, got {keys}")
    missing = [str(path) for _, path in members if not (Path(path) / "config.cfg").exists()]
    if missing:
        raise ValueError(f"not a trained pipeline (no config.cfg): {missing}")
    pipes = [detector_pipe(path) for _, path in members]
    (first_key, first_path), first_pipe = members[0], pipes[0]
    nlp = spacy.load(first_path, config={"components": {first_pipe: {"spans_key": first_key}}})
    for (key, path), pipe in zip(members[1:], pipes[1:]):
        other = spacy.load(path, config={"components": {pipe: {"spans_key": key}}})
        for encoder_pipe in listened_encoders(other, pipe):
            other.replace_listeners(encoder_pipe, pipe, ["model.tok2vec"])
        if listened_encoders(other, pipe):
            raise ValueError(f"{path}: {pipe} still listens to {listened_encoders(other, pipe)} after replace_listeners")
        nlp.add_pipe(pipe, name=key if pipe in nlp.component_names else pipe, source=other)
    ensemble = nlp.add_pipe("nested_ensemble", config={"members": keys, "spans_key": spans_key})
    ensemble.check_members(nlp)  # type: ignore[attr-defined]
    return nlp


def parse_members(words: Sequence[str]) -> List[Tuple[str, Path]]:
    """``["nested_ll=path", ...]`` -> ``[("nested_ll", Path("path")), ...]``."""
    out: List[Tuple[str, Path]] = []
    for word in words:
        key, sep, path = word.partition("=")
        if not sep or not key or not path:
            raise ValueError(f"a member is KEY=MODEL (the span key it writes, the pipeline's folder), got {word!r}")
        out.append((key, Path(path)))
    return out


@app.command("combine-pipelines")
def combine_pipelines_cli(
    output: Path = typer.Argument(..., help="Where to write the combined pipeline"),
    members: List[str] = typer.Argument(..., help="KEY=MODEL, two or more: a trained pipeline and the key its detector writes"),
    spans_key: str = typer.Option("nested", "--spans-key", help="The key the ensemble writes"),
) -> None:
    """Combine any trained detector pipelines (the same detector several times too) under one nested_ensemble."""
    try:
        nlp = combine_pipelines(parse_members(members), spans_key)
        _write_atomically(nlp, output)
    except (ValueError, OSError) as err:
        fail(str(err))
    msg.good(f"nested_ensemble of {[k for k, _ in parse_members(members)]} saved to {output}; tune it with tune-ensemble")
