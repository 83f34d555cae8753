"""Ensembles of this package's detectors, built two ways (setups (a) and (b) of ``spacy_nested.ensemble.component``).

``python -m spacy_nested combine-pipelines OUTPUT KEY=MODEL KEY=MODEL ...``: any trained detectors, one ensemble.

    python -m spacy_nested combine-pipelines training/seeds \\
        nested_pr=training/pr/model-tuned nested_ll1=training/ll1/model-tuned nested_ll2=training/ll2/model-tuned

Each ``KEY=MODEL`` is a trained pipeline holding exactly one detector of this
package (``locate_label_ner``, ``boundary_offset_ner``, ``proposer_regressor_ner``);
inside the ensemble that detector writes ``KEY``. The same detector may come
several times (seeds, configs): the spaCy project's ``ensemble`` step
(``scripts/workflow.py build-ensemble``, beside project.yml) uses this to combine
one pipeline per detector it trained; this command combines any. Setup (b) of
``spacy_nested.ensemble.component``: the first pipeline is the base, its detector's
``spans_key`` overridden at load (``spacy.load(..., config=...)``, so the saved
config says it too); each other pipeline is loaded with its key, its detector
made to own a copy of the encoder it listens to (``replace_listeners``: spaCy's
``tok2vec`` or ``transformer``, whatever it is called) and sourced, under its own
pipe name or, where the pipeline already has a pipe of that name, under its key.
Each member therefore predicts exactly what its own pipeline predicts. Then a
``nested_ensemble`` of the keys in the order given (default settings: tune them
with ``tune-ensemble``), its members checked (keys, labels), and the pipeline
written to OUTPUT all or nothing.

``python -m spacy_nested shared-encoder-config OUTPUT.cfg KEY=CONFIG KEY=CONFIG ...``: one encoder, several heads.

    python -m spacy_nested shared-encoder-config configs/genia_ensemble_cpu.cfg \
        nested_ll=configs/genia_locate_label_cpu.cfg nested_bo=configs/genia_boundary_offset_cpu.cfg
    python -m spacy train configs/genia_ensemble_cpu.cfg --paths.train train.spacy --paths.dev dev.spacy

A training config in which the members' detectors listen to one encoder and a
``nested_ensemble`` follows them, from the members' own training configs: the
first config gives everything but the other detectors (encoder, corpora,
training, initialize); each member's detector block is copied in with
``spans_key`` set to its key (named as in its config or, where that name is
taken, after its key), and both corpora get the augmenter
``spacy_nested.copy_spans.v1``, which copies the corpus's gold spans (the
first detector's ``spans_key`` in its config) under every member key: training
needs them there, and on dev they give each head's own score in the training
log (``spans_<KEY>_f``, weight 0). The ensemble writes the corpus's key and its
F1 picks ``model-best``. The configs must agree on everything but their
detector (the same encoder, schedule, batcher), else the error names the
sections that differ.
"""
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import spacy
from confection import Config
from spacy.language import Language

from spacy_nested.files import replace_folder

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


def _renamed(block: Any, old: str, new: str) -> Any:
    """`block` with each reference to ``${components.<old>`` made one to ``${components.<new>``."""
    if isinstance(block, dict):
        return {k: _renamed(v, old, new) for k, v in block.items()}
    if isinstance(block, list):
        return [_renamed(v, old, new) for v in block]
    if isinstance(block, str):
        return block.replace("${components.%s." % old, "${components.%s." % new)
    return block


def _detector_in(config: Config, where: Path) -> str:
    pipes = config["nlp"]["pipeline"]
    found = [p for p in pipes if config["components"].get(p, {}).get("factory") in DETECTOR_FACTORIES]
    if len(found) != 1:
        raise ValueError(
            f"{where}: a member config trains exactly one detector of {list(DETECTOR_FACTORIES)}, this one {found or 'none'}"
        )
    return found[0]


def _without(config: Config, pipe: str) -> Dict[str, Any]:
    """`config` less detector `pipe` (its block and its place in the pipeline): what the members must share."""
    rest = {k: v for k, v in config.items() if k != "components"}
    rest["components"] = {k: v for k, v in config["components"].items() if k != pipe}
    rest["nlp"] = {**config["nlp"], "pipeline": [p for p in config["nlp"]["pipeline"] if p != pipe]}
    return rest


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    """The sections (each component on its own) in which config dicts `a` and `b` differ."""
    out: List[str] = []
    for section in sorted(set(a) | set(b)):
        if section == "components":
            names = sorted(set(a.get(section, {})) | set(b.get(section, {})))
            out += [f"[components.{n}]" for n in names if a[section].get(n) != b[section].get(n)]
        elif a.get(section) != b.get(section):
            out.append(f"[{section}]")
    return out


def shared_encoder_config(members: Sequence[Tuple[str, Path]]) -> Config:
    """The training config of the members' detectors over one encoder, then a ``nested_ensemble`` (module docstring).

    RAISES (ValueError): fewer than two members, a repeated key or one equal to the corpus's key, a
        config without exactly one detector, configs that differ in more than their detector.
    """
    keys = [key for key, _ in members]
    if len(members) < 2 or len(set(keys)) != len(keys):
        raise ValueError(f"an ensemble needs at least two members with different keys, got {keys}")
    configs = [spacy.util.load_config(path, interpolate=False) for _, path in members]
    pipes = [_detector_in(config, path) for config, (_, path) in zip(configs, members)]
    base, base_pipe = configs[0], pipes[0]
    shared = _without(base, base_pipe)
    for config, pipe, (_, path) in zip(configs[1:], pipes[1:], members[1:]):
        other = _without(config, pipe)
        differ = _differences(shared, other)
        if differ:
            raise ValueError(
                f"{path} differs from {members[0][1]} in {', '.join(differ)}: the members of one encoder must share "
                f"everything but their detector"
            )
    gold_key = base["components"][base_pipe].get("spans_key", "nested")
    if gold_key in keys:
        raise ValueError(f"the ensemble writes '{gold_key}' (the corpus's key): give its members other keys, got {keys}")
    out = Config(shared)
    out["components"] = {k: v for k, v in base["components"].items() if k != base_pipe}
    names: List[str] = []
    for config, pipe, key in zip(configs, pipes, keys):
        name = key if pipe in out["components"] or pipe in names else pipe
        out["components"][name] = {**_renamed(config["components"][pipe], pipe, name), "spans_key": key}
        names.append(name)
    out["components"]["nested_ensemble"] = {"factory": "nested_ensemble", "members": keys, "spans_key": gold_key}
    out["nlp"]["pipeline"] = [*out["nlp"]["pipeline"], *names, "nested_ensemble"]
    copier = {"@augmenters": "spacy_nested.copy_spans.v1", "source": gold_key, "targets": keys}
    for corpus in ("train", "dev"):
        out["corpora"][corpus]["augmenter"] = dict(copier)
    weights: Dict[str, float] = {f"spans_{gold_key}_{part}": float(part == "f") for part in "fpr"}
    weights.update({f"spans_{key}_f": 0.0 for key in keys})
    out["training"]["score_weights"] = weights
    return out


def parse_members(words: Sequence[str]) -> List[Tuple[str, Path]]:
    """``["nested_ll=path", ...]`` -> ``[("nested_ll", Path("path")), ...]``."""
    out: List[Tuple[str, Path]] = []
    for word in words:
        key, sep, path = word.partition("=")
        if not sep or not key or not path:
            raise ValueError(f"a member is KEY=MODEL (the span key it writes, the pipeline's folder), got {word!r}")
        out.append((key, Path(path)))
    return out


def save_atomically(nlp: Language, output: Path) -> None:
    """``nlp.to_disk(output)`` all or nothing: into a temporary folder beside it, then renamed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        nlp.to_disk(tmp / "model")
        replace_folder(tmp / "model", output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
