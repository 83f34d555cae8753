"""The per-pipeline steps of project.yml: ``python scripts/workflow.py COMMAND NAME ...``.

project.yml runs every detector and both spaCy baselines through the same
commands, from the project's folder, so that the var ``encoder`` picks the
config family (``configs/genia_<name>[_<encoder>].cfg``) and the var
``detectors`` picks which pipelines run::

    python scripts/workflow.py train NAME --encoder cpu --detectors "locate_label spancat" --output-root training/genia
    python scripts/workflow.py tune NAME corpus/genia/dev.spacy --encoder cpu --detectors "..." --output-root training/genia
    python scripts/workflow.py evaluate NAME corpus/genia/dev.spacy ... --metrics-root metrics/genia

and likewise ``benchmark``, ``visualize`` and ``package``. ``train --smoke`` is
the ``smoke`` workflow's short training: the encoder's and pipeline's schedule
from ``SMOKE`` (steps, learning rate) on top of the config, for a check that
predicts something within minutes.

A pipeline not named in ``--detectors`` is skipped with a message (weasel has
no conditionals). Outputs: ``<output-root>/<encoder>/<name>/`` (spaCy's
``model-best``/``model-last`` and a ``TRAINED`` marker written when training
finished, and ``model-tuned``: ``model-best`` with the decision threshold that
``tune`` found on dev, which the later steps use when it is there) and
``<metrics-root>/<encoder>/<name>.json``, which ``python -m spacy_nested report``
puts side by side. A finished training is reused, so an interrupted
``spacy project run all`` resumes at the first pipeline that has not finished
(that one restarts from scratch: spaCy has no resume).

The name ``ensemble`` (in ``--detectors`` only when asked for: it is not in the
default list) is the ``nested_ensemble`` of the trained detectors. It has no
config and is not trained: ``build-ensemble`` combines the detectors' trained
pipelines (each one's ``model-tuned``, else ``model-best``) with the library's
``spacy_nested.ensemble.build.combine_pipelines`` (setup (b) of
``spacy_nested.ensemble.component``: sourced, each member keeping its own
encoder), and ``tune ensemble`` tunes its weights and threshold on dev (as
``python -m spacy_nested tune-ensemble`` does); evaluate, benchmark, visualize
and package then take it like the others::

    python scripts/workflow.py build-ensemble --encoder cpu --detectors "... ensemble" --output-root training/genia
    python scripts/workflow.py tune ensemble corpus/genia/dev.spacy --encoder cpu --detectors "... ensemble" ...

The data these steps read comes from ``scripts/prepare_data.py`` (``all``) or
``python -m spacy_nested convert`` (``smoke``); the configs from
``scripts/write_configs.py``.
"""

import json
import shutil
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import spacy
import srsly
import typer
from spacy.cli._util import parse_config_overrides
from wasabi import msg
from write_configs import config_name  # the sibling script scripts/write_configs.py

from spacy_nested.cli._util import fail
from spacy_nested.cli.ensemble import print_tuned
from spacy_nested.ensemble.build import combine_pipelines
from spacy_nested.ensemble.tune import tune_ensemble

app = typer.Typer(
    name="workflow",
    help="The per-pipeline steps of project.yml: train, tune, evaluate, benchmark, visualize, package; build-ensemble.",
    no_args_is_help=True,
    add_completion=False,
)

PIPELINES = ("locate_label", "boundary_offset", "proposer_regressor", "spancat", "span_finder")
# cpu: spaCy's tok2vec trained from scratch; trf: a hub transformer (GPU); minilm: all-MiniLM-L6-v2 from
# the `minilm` extra, fine-tuned on the CPU
ENCODERS = ("cpu", "trf", "minilm")
CONFIGS: Dict[str, Dict[str, str]] = {p: {e: config_name(p, e) for e in ENCODERS} for p in PIPELINES}
TRAINED = "TRAINED"
TUNED = "model-tuned"
# The component whose `threshold` decides which spans a pipeline writes; `tune` sets it on dev for
# all five the same way (spaCy's find-threshold table, from one prediction: spacy_nested.evaluation.thresholds).
# span_finder + spancat: spancat's (span_finder's own threshold only proposes candidates).
THRESHOLD_PIPES = {
    "locate_label": "locate_label_ner",
    "boundary_offset": "boundary_offset_ner",
    "proposer_regressor": "proposer_regressor_ner",
    "spancat": "spancat",
    "span_finder": "spancat",
}
# The nested_ensemble of the trained detectors: a pipeline name for --detectors and the later steps, but
# not in CONFIGS (it is built from the trained members by build-ensemble, never trained from a config).
ENSEMBLE = "ensemble"
# The detectors an ensemble can combine, each with the span key its component writes inside the ensemble.
ENSEMBLE_MEMBERS: Dict[str, str] = {
    "locate_label": "nested_ll",
    "boundary_offset": "nested_bo",
    "proposer_regressor": "nested_pr",
}


class SmokeSchedule(NamedTuple):
    steps: int
    learn_rate: float  # a float learn rate replaces the config's; a schedule keeps its form (see smoke_overrides)


# The smoke's schedule for each encoder and pipeline: the fewest steps and a rate with which each predicts
# something (dev F1 > 0) on the smoke's slice (200 train, 100 dev sentences). The tok2vec configs: 60 steps
# at 0.01; the slower starters boundary_offset (F1 > 0 from step 80 at 0.003) and
# proposer_regressor (from step 40 at 0.002) need their own. MiniLM diverges at those rates (locate_label's
# dev F1 0.00 at 0.01), so its smoke keeps the config's warm-up and decay over the smoke's steps
# (smoke_overrides). Measured (dev F1 of the 100 dev sentences every 20 or 40 steps): at a peak
# of 1e-4, proposer_regressor 55.2, spancat 24.6 and span_finder + spancat 24.9 after 100 steps, but
# locate_label 1.9 and boundary_offset 0.0; at 3e-4 locate_label 32.6 after 100 (F1 > 0 from step 60) and
# boundary_offset 0.0 after 100, 24.3 after 200 (F1 > 0 from step 80). The detectors' heads step at their
# learn_rate_scale (20) times these rates; spancat's and span_finder's at these rates.
SMOKE: Dict[str, Dict[str, SmokeSchedule]] = {
    "cpu": {
        "locate_label": SmokeSchedule(60, 0.01),
        "boundary_offset": SmokeSchedule(100, 0.003),
        "proposer_regressor": SmokeSchedule(60, 0.002),
        "spancat": SmokeSchedule(60, 0.01),
        "span_finder": SmokeSchedule(60, 0.01),
    },
    "minilm": {
        "locate_label": SmokeSchedule(100, 0.0003),
        "boundary_offset": SmokeSchedule(200, 0.0003),
        "proposer_regressor": SmokeSchedule(100, 0.0001),
        "spancat": SmokeSchedule(100, 0.0001),
        "span_finder": SmokeSchedule(100, 0.0001),
    },
}
SMOKE["trf"] = SMOKE["minilm"]  # the same kind of schedule; the trf smoke runs on a GPU


def smoke_overrides(name: str, encoder: str, config_dir: Path = Path("configs")) -> Dict[str, object]:
    """Config overrides that make `name`'s training for `encoder` the smoke's short one (``SMOKE``).

    A config whose learn rate is a number gets the smoke's rate; one with a schedule (the transformer
    configs' warm-up and linear decay) keeps it, shortened to the smoke's steps with the same 10% warm-up
    and the smoke's rate as its peak.
    """
    config = config_path(name, encoder, config_dir)
    smoke = SMOKE[encoder][name]
    overrides: Dict[str, object] = {"training.max_steps": smoke.steps, "training.eval_frequency": smoke.steps}
    learn_rate = spacy.util.load_config(config)["training"]["optimizer"]["learn_rate"]
    if isinstance(learn_rate, dict):
        overrides["training.optimizer.learn_rate.initial_rate"] = smoke.learn_rate
        overrides["training.optimizer.learn_rate.warmup_steps"] = max(1, smoke.steps // 10)
        overrides["training.optimizer.learn_rate.total_steps"] = smoke.steps
    else:
        overrides["training.optimizer.learn_rate"] = smoke.learn_rate
    return overrides


# Said before each training: spaCy's table prints this column without explaining it.
TOK2VEC_LOSS_NOTE = (
    "LOSS TOK2VEC in the table below is not a loss: spaCy prints there the sum of the squared gradients "
    "that the components send back to the shared tok2vec. The detectors average their losses over many "
    "spans or cells, so each token's gradient is small and the column can read 0.00 while the tok2vec "
    "trains. Watch the component's own LOSS column and SPANS_NESTED_F."
)

# Options every per-pipeline command shares (typer reads each default marker anew per command).
NAME = typer.Argument(..., help=f"One of {sorted(CONFIGS)} or {ENSEMBLE} (not trained: built by build-ensemble)")
ENCODER = typer.Option(
    "cpu", "--encoder", help="cpu (tok2vec configs), trf (transformer configs, GPU) or minilm (MiniLM on the CPU)"
)
DETECTORS = typer.Option(" ".join(CONFIGS), "--detectors", help="Space-separated pipelines to run")
OUTPUT_ROOT = typer.Option(Path("training"), "--output-root")
METRICS_ROOT = typer.Option(Path("metrics"), "--metrics-root")
GPU_ID = typer.Option(-1, "--gpu-id")


def config_path(name: str, encoder: str, config_dir: Path = Path("configs")) -> Path:
    """The config of pipeline `name` for `encoder` (one of ENCODERS)."""
    if name == ENSEMBLE:
        raise ValueError(
            f"'{ENSEMBLE}' has no config and is not trained: it combines the trained detectors; build it with "
            f"build-ensemble (the project's `ensemble` step) after training them"
        )
    if name not in CONFIGS:
        raise ValueError(f"unknown pipeline '{name}'; choose one of {sorted(CONFIGS)}")
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder '{encoder}'; choose one of {ENCODERS}")
    if encoder not in CONFIGS[name]:
        raise ValueError(f"'{name}' has no '{encoder}' config (it has: {sorted(CONFIGS[name])})")
    return config_dir / CONFIGS[name][encoder]


def selected(name: str, detectors: str) -> bool:
    """Whether `name` is in the space-separated list `detectors` (unknown names are an error)."""
    names = detectors.split()
    known = set(CONFIGS) | {ENSEMBLE}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown pipelines in detectors: {unknown}; choose from {sorted(known)}")
    return name in names


def train_pipeline(
    name: str,
    encoder: str,
    output_root: Path,
    gpu_id: int = -1,
    overrides: Optional[Dict[str, object]] = None,
    config_dir: Path = Path("configs"),
) -> Path:
    """Train `name` into ``output_root/<encoder>/<name>`` unless a finished run is there."""
    from spacy.cli.train import train

    config = config_path(name, encoder, config_dir)
    output = output_root / encoder / name
    if (output / TRAINED).exists():
        msg.info(f"{name}: reusing the finished training in {output}")
        return output
    msg.info(f"{name}: {TOK2VEC_LOSS_NOTE}")
    shutil.rmtree(output / TUNED, ignore_errors=True)  # tuned for a pipeline this training replaces
    train(config, output, use_gpu=gpu_id, overrides=overrides or {})
    (output / TRAINED).write_text(srsly.json_dumps(overrides or {}) + "\n", encoding="utf8")
    return output


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_pipeline_cli(
    ctx: typer.Context,
    name: str = NAME,
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    gpu_id: int = GPU_ID,
    smoke: bool = typer.Option(False, "--smoke", help="The smoke's short schedule for this encoder (SMOKE)"),
) -> None:
    """Train one pipeline of the project (extra --section.key value args override its config and --smoke)."""
    try:
        if not selected(name, detectors):
            msg.info(f"{name}: not in detectors, skipped")
            return
        overrides = smoke_overrides(name, encoder) if smoke else {}
        overrides.update(parse_config_overrides(ctx.args))
        train_pipeline(name, encoder, output_root, gpu_id, overrides)
    except ValueError as err:
        fail(str(err))


def trained_path(name: str, encoder: str, output_root: Path) -> Path:
    """``output_root/<encoder>/<name>/model-tuned`` if tuned, else its ``model-best``.

    RAISES (ValueError): when `name` has no model-best (not trained, or the ensemble not built).
    """
    model = output_root / encoder / name / "model-best"
    if not model.exists():
        how = "run the ensemble step (build-ensemble) first" if name == ENSEMBLE else f"run train-{name} first"
        raise ValueError(f"{name}: no trained pipeline at {model}; {how}")
    tuned = model.parent / TUNED
    return tuned if tuned.exists() else model


def _trained_model(name: str, detectors: str, encoder: str, output_root: Path, gpu_id: int = -1) -> Optional[Path]:
    """The model-tuned of `name` if tuned, else its model-best; None when `name` is not selected;
    exits when it was not trained.

    With `gpu_id` >= 0, the GPU is set up for the step that loads the model.
    """
    try:
        if not selected(name, detectors):
            msg.info(f"{name}: not in detectors, skipped")
            return None
        model = trained_path(name, encoder, output_root)
    except ValueError as err:
        fail(str(err))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return model


def build_ensemble(
    encoder: str,
    output_root: Path,
    members: Sequence[str] = tuple(ENSEMBLE_MEMBERS),
    spans_key: str = "nested",
) -> Path:
    """Combine the trained `members` into one pipeline with a ``nested_ensemble`` writing `spans_key`.

    Each member's pipeline (``model-tuned``, else ``model-best``: `trained_path`)
    writes its key of `ENSEMBLE_MEMBERS` inside the ensemble
    (``spacy_nested.ensemble.build.combine_pipelines``, which any set of pipelines can
    use: ``python -m spacy_nested combine-pipelines``), and the pipeline is saved to
    ``output_root/<encoder>/ensemble/model-best`` with a ``TRAINED`` marker
    naming the members' pipelines; a ``model-tuned`` of an earlier build is
    removed (tune it again: ``tune ensemble``). Returns model-best.

    RAISES (ValueError): an unknown encoder or member, a repeated member, fewer
        than two, members not trained (all of them named).
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder '{encoder}'; choose one of {ENCODERS}")
    members = list(members)
    unknown = [m for m in members if m not in ENSEMBLE_MEMBERS]
    if unknown:
        raise ValueError(f"unknown ensemble members {unknown}; an ensemble combines some of {list(ENSEMBLE_MEMBERS)}")
    if len(members) < 2 or len(set(members)) != len(members):
        raise ValueError(f"an ensemble needs at least two different members, got {members}")
    paths: Dict[str, Path] = {}
    missing: List[str] = []
    for member in members:
        try:
            paths[member] = trained_path(member, encoder, output_root)
        except ValueError as err:
            missing.append(str(err))
    if missing:
        raise ValueError(
            f"ensemble members not trained: {'; '.join(missing)} (train them, named in --detectors, before "
            f"the ensemble step, or leave them out of --members)"
        )
    nlp = combine_pipelines([(ENSEMBLE_MEMBERS[m], paths[m]) for m in members], spans_key)
    keys = [ENSEMBLE_MEMBERS[m] for m in members]
    output = output_root / encoder / ENSEMBLE
    (output / TRAINED).unlink(missing_ok=True)
    shutil.rmtree(output / TUNED, ignore_errors=True)  # tuned for an ensemble this build replaces
    shutil.rmtree(output / "model-best", ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output / "model-best")
    record = {"members": {m: str(paths[m]) for m in members}, "keys": keys, "spans_key": spans_key}
    (output / TRAINED).write_text(srsly.json_dumps(record) + "\n", encoding="utf8")
    return output / "model-best"


@app.command("build-ensemble")
def build_ensemble_cli(
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    members: str = typer.Option(
        " ".join(ENSEMBLE_MEMBERS), "--members", help=f"Space-separated detectors to combine (of {list(ENSEMBLE_MEMBERS)})"
    ),
    spans_key: str = typer.Option("nested", "--spans-key", help="The key the ensemble writes"),
) -> None:
    """Combine the trained detectors into ``<output-root>/<encoder>/ensemble/model-best`` (skipped unless in --detectors)."""
    try:
        if not selected(ENSEMBLE, detectors):
            msg.info(f"{ENSEMBLE}: not in detectors, skipped")
            return
        model = build_ensemble(encoder, output_root, members.split(), spans_key)
    except ValueError as err:
        fail(str(err))
    msg.good(
        f"{ENSEMBLE}: nested_ensemble of {members.split()} saved to {model}; "
        f"tune it with `scripts/workflow.py tune {ENSEMBLE}`"
    )


def tune_threshold(model: Path, name: str, docbin: Path, spans_key: str = "nested", n_trials: int = 21) -> Dict[str, object]:
    """Find the threshold of pipeline `name`'s deciding component (`THRESHOLD_PIPES`) that gives
    the best ``spans_<key>_f`` on `docbin` (spaCy's find-threshold: `n_trials` values evenly from 0
    to 1, the first best wins; computed from one prediction by `thresholds.sweep_threshold`), and
    save `model` with it next to it as ``model-tuned``. Returns what it found."""
    from spacy_nested.evaluation.thresholds import dev_examples, sweep_threshold, thresholds_for

    pipe_name = THRESHOLD_PIPES[name]
    nlp = spacy.load(model)
    scores = sweep_threshold(nlp, pipe_name, dev_examples(nlp, docbin), thresholds_for(n_trials), f"spans_{spans_key}_f")
    threshold = max(scores, key=lambda t: scores[t])
    configured = float(nlp.get_pipe_config(pipe_name)["threshold"])
    # as find-threshold does: the config (what a detector re-applies on loading) and cfg (spancat's own)
    nlp._pipe_configs[pipe_name]["threshold"] = threshold
    nlp.get_pipe(pipe_name).cfg["threshold"] = threshold  # type: ignore[attr-defined]
    nlp.to_disk(model.parent / TUNED)
    return {"pipe": pipe_name, "configured": configured, "threshold": threshold, "score": scores[threshold], "scores": scores}


@app.command("tune")
def tune_pipeline_cli(
    name: str = NAME,
    docbin: Path = typer.Argument(..., help="Gold DocBin (dev)", exists=True, dir_okay=False),
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    spans_key: str = typer.Option("nested", "--spans-key"),
    n_trials: int = typer.Option(21, "--n-trials", help="Thresholds tried, evenly from 0 to 1"),
) -> None:
    """Tune the decision threshold of ``model-best`` on dev; write ``model-tuned`` beside it.

    ``ensemble``: its member weights and threshold instead (``tune-ensemble``'s grid).
    """
    model = _trained_model(name, detectors, encoder, output_root)
    if model is None:
        return
    model = model.parent / "model-best"  # tuned again from the trained pipeline, never from a tuned one
    if name == ENSEMBLE:
        try:
            tuned = tune_ensemble(model, docbin, n_trials=n_trials, output=model.parent / TUNED, gold_key=spans_key)
        except (ValueError, OSError) as err:
            fail(str(err))
        print_tuned(tuned)
        return
    found = tune_threshold(model, name, docbin, spans_key, n_trials)
    msg.good(
        f"{name}: {found['pipe']} threshold {found['threshold']:.2f} (configured {found['configured']:.2f}), "
        f"spans_{spans_key}_f {found['score']:.4f} on {docbin}; saved to {model.parent / TUNED}"
    )


@app.command("evaluate")
def evaluate_pipeline_cli(
    name: str = NAME,
    docbin: Path = typer.Argument(..., help="Gold DocBin", exists=True, dir_okay=False),
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    metrics_root: Path = METRICS_ROOT,
    spans_key: str = typer.Option("nested", "--spans-key"),
    limit: int = typer.Option(0, "--limit", help="Score only the first N docs (0: all)"),
    gpu_id: int = GPU_ID,
) -> None:
    """Score ``training/<encoder>/<name>/model-tuned`` (else model-best) into ``metrics/<encoder>/<name>.json``."""
    from spacy_nested.evaluation.report import evaluate, write_metrics

    model = _trained_model(name, detectors, encoder, output_root, gpu_id)
    if model is None:
        return
    write_metrics(evaluate(model, docbin, spans_key=spans_key, limit=limit), metrics_root / encoder / f"{name}.json")


@app.command("visualize")
def visualize_pipeline_cli(
    name: str = NAME,
    docbin: Path = typer.Argument(..., help="Gold DocBin", exists=True, dir_okay=False),
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    reports_root: Path = typer.Option(Path("reports"), "--reports-root"),
    spans_key: str = typer.Option("nested", "--spans-key"),
    n_docs: int = typer.Option(20, "--n-docs", help="How many docs to render"),
    show_scores: bool = typer.Option(
        False, "--show-scores", help="Label each predicted span with its score (protein 0.93)"
    ),
) -> None:
    """displaCy span HTML of a pipeline's predictions next to gold: reports/<encoder>/<name>.html."""
    from spacy.tokens import DocBin

    from spacy_nested.evaluation.visualize import render_comparison

    model = _trained_model(name, detectors, encoder, output_root)
    if model is None:
        return
    nlp = spacy.load(model)
    gold = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))[:n_docs]
    predicted = list(nlp.pipe(doc.text for doc in gold))
    out = reports_root / encoder / f"{name}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{name}: gold and predicted" + (" (predicted spans with their scores)" if show_scores else "")
    page = render_comparison(gold, predicted, spans_key, title=title, show_scores=show_scores)
    out.write_text(page, encoding="utf8")
    msg.good(f"{name}: {len(gold)} docs rendered to {out}")


@app.command("benchmark")
def benchmark_pipeline_cli(
    name: str = NAME,
    docbin: Path = typer.Argument(..., help="DocBin whose texts are annotated", exists=True, dir_okay=False),
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    metrics_root: Path = METRICS_ROOT,
    batch_size: int = typer.Option(128, "--batch-size"),
    n_batches: int = typer.Option(50, "--batches"),
    warmup_epochs: int = typer.Option(1, "--warmup"),
    gpu_id: int = GPU_ID,
) -> None:
    """``spacy benchmark speed``'s words/s (mean, 95% CI) added to ``metrics/<encoder>/<name>.json``."""
    from spacy_nested.evaluation.report import benchmark_speed

    model = _trained_model(name, detectors, encoder, output_root, gpu_id)
    if model is None:
        return
    result = benchmark_speed(model, docbin, batch_size=batch_size, n_batches=n_batches, warmup_epochs=warmup_epochs)
    path = metrics_root / encoder / f"{name}.json"
    metrics = json.loads(path.read_text(encoding="utf8")) if path.exists() else {}
    metrics["benchmark"] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2), encoding="utf8")
    low, high = result["ci95"]
    msg.good(f"{name}: {result['words_per_s']:,.0f} words/s (95% CI {low:,.0f}-{high:,.0f}), added to {path}")


@app.command("package")
def package_pipeline_cli(
    name: str = NAME,
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    packages_root: Path = typer.Option(Path("packages"), "--packages-root"),
    version: str = typer.Option("0.1.0", "--version"),
) -> None:
    """``spacy package`` of model-tuned (else model-best) as a wheel: packages/<encoder>/en_nested_<name>-<version>/dist."""
    from spacy.cli.package import package

    model = _trained_model(name, detectors, encoder, output_root)
    if model is None:
        return
    out = packages_root / encoder
    out.mkdir(parents=True, exist_ok=True)
    package(model, out, name=f"nested_{name}", version=version, create_sdist=False, create_wheel=True, force=True)
    msg.good(f"{name}: wheel in {out}")


if __name__ == "__main__":
    app()
