"""The project workflow's steps for one pipeline: which config, where outputs go, resuming.

``project.yml`` runs every detector and both spaCy baselines through the same
two commands, so that the var ``encoder`` picks the config family and the var
``detectors`` picks which pipelines run:

    python -m spacy_nested train-pipeline NAME --encoder cpu --detectors "locate_label spancat"
    python -m spacy_nested evaluate-pipeline NAME corpus/dev.spacy --encoder cpu --detectors "..."

A pipeline not named in ``--detectors`` is skipped with a message (weasel has
no conditionals). Outputs: ``training/<encoder>/<name>/`` (spaCy's
``model-best``/``model-last`` and a ``TRAINED`` marker written when training
finished) and ``metrics/<encoder>/<name>.json``. A finished training is reused,
so an interrupted ``spacy project run all`` resumes at the first pipeline
that has not finished (that one restarts from scratch: spaCy has no resume).
"""
import json
from pathlib import Path
from typing import Dict, Optional

import spacy
import srsly
import typer
from spacy.cli._util import parse_config_overrides
from wasabi import msg

from ._cli_util import app, fail

CONFIGS: Dict[str, Dict[str, str]] = {
    "locate_label": {"cpu": "genia_locate_label_cpu.cfg", "trf": "genia_locate_label.cfg"},
    "boundary_offset": {"cpu": "genia_boundary_offset_cpu.cfg", "trf": "genia_boundary_offset.cfg"},
    "proposer_regressor": {"cpu": "genia_proposer_regressor_cpu.cfg", "trf": "genia_proposer_regressor.cfg"},
    "spancat": {"cpu": "genia_spancat_cpu.cfg", "trf": "genia_spancat.cfg"},
    "span_finder": {"cpu": "genia_span_finder_cpu.cfg", "trf": "genia_span_finder.cfg"},
}
ENCODERS = ("cpu", "trf")
TRAINED = "TRAINED"

# Options every per-pipeline command shares (typer reads each default marker anew per command).
NAME = typer.Argument(..., help=f"One of {sorted(CONFIGS)}")
ENCODER = typer.Option("cpu", "--encoder", help="cpu (tok2vec configs) or trf (transformer configs)")
DETECTORS = typer.Option(" ".join(CONFIGS), "--detectors", help="Space-separated pipelines to run")
OUTPUT_ROOT = typer.Option(Path("training"), "--output-root")
METRICS_ROOT = typer.Option(Path("metrics"), "--metrics-root")
GPU_ID = typer.Option(-1, "--gpu-id")


def config_path(name: str, encoder: str, config_dir: Path = Path("configs")) -> Path:
    """The config of pipeline `name` for `encoder` ("cpu": tok2vec, "trf": transformer)."""
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
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        raise ValueError(f"unknown pipelines in detectors: {unknown}; choose from {sorted(CONFIGS)}")
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

    output = output_root / encoder / name
    if (output / TRAINED).exists():
        msg.info(f"{name}: reusing the finished training in {output}")
        return output
    train(config_path(name, encoder, config_dir), output, use_gpu=gpu_id, overrides=overrides or {})
    (output / TRAINED).write_text(srsly.json_dumps(overrides or {}) + "\n", encoding="utf8")
    return output


@app.command("train-pipeline", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_pipeline_cli(
    ctx: typer.Context,
    name: str = NAME,
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    gpu_id: int = GPU_ID,
) -> None:
    """Train one pipeline of the project (extra --section.key value args override its config)."""
    try:
        if not selected(name, detectors):
            msg.info(f"{name}: not in detectors, skipped")
            return
        train_pipeline(name, encoder, output_root, gpu_id, parse_config_overrides(ctx.args))
    except ValueError as err:
        fail(str(err))


def _trained_model(name: str, detectors: str, encoder: str, output_root: Path, gpu_id: int = -1) -> Optional[Path]:
    """The model-best of `name`, None when `name` is not selected; exits when it was not trained.

    With `gpu_id` >= 0, the GPU is set up for the step that loads the model.
    """
    try:
        if not selected(name, detectors):
            msg.info(f"{name}: not in detectors, skipped")
            return None
    except ValueError as err:
        fail(str(err))
    model = output_root / encoder / name / "model-best"
    if not model.exists():
        fail(f"{name}: no trained pipeline at {model}; run train-{name} first")
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return model


@app.command("evaluate-pipeline")
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
    """Score ``training/<encoder>/<name>/model-best`` into ``metrics/<encoder>/<name>.json``."""
    from .report import evaluate, write_metrics

    model = _trained_model(name, detectors, encoder, output_root, gpu_id)
    if model is None:
        return
    write_metrics(evaluate(model, docbin, spans_key=spans_key, limit=limit), metrics_root / encoder / f"{name}.json")


@app.command("visualize-pipeline")
def visualize_pipeline_cli(
    name: str = NAME,
    docbin: Path = typer.Argument(..., help="Gold DocBin", exists=True, dir_okay=False),
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    reports_root: Path = typer.Option(Path("reports"), "--reports-root"),
    spans_key: str = typer.Option("nested", "--spans-key"),
    n_docs: int = typer.Option(20, "--n-docs", help="How many docs to render"),
) -> None:
    """displaCy span HTML of a pipeline's predictions next to gold: reports/<encoder>/<name>.html."""
    from spacy.tokens import DocBin

    from .visualize import render_comparison

    model = _trained_model(name, detectors, encoder, output_root)
    if model is None:
        return
    nlp = spacy.load(model)
    gold = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))[:n_docs]
    predicted = list(nlp.pipe(doc.text for doc in gold))
    out = reports_root / encoder / f"{name}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_comparison(gold, predicted, spans_key, title=f"{name}: gold and predicted"), encoding="utf8")
    msg.good(f"{name}: {len(gold)} docs rendered to {out}")


@app.command("benchmark-pipeline")
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
    from .report import benchmark_speed

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


@app.command("package-pipeline")
def package_pipeline_cli(
    name: str = NAME,
    encoder: str = ENCODER,
    detectors: str = DETECTORS,
    output_root: Path = OUTPUT_ROOT,
    packages_root: Path = typer.Option(Path("packages"), "--packages-root"),
    version: str = typer.Option("0.1.0", "--version"),
) -> None:
    """``spacy package`` of ``model-best`` as an installable wheel: packages/<encoder>/en_nested_<name>-<version>/dist."""
    from spacy.cli.package import package

    model = _trained_model(name, detectors, encoder, output_root)
    if model is None:
        return
    out = packages_root / encoder
    out.mkdir(parents=True, exist_ok=True)
    package(model, out, name=f"nested_{name}", version=version, create_sdist=False, create_wheel=True, force=True)
    msg.good(f"{name}: wheel in {out}")
