"""``evaluate`` and ``report``: score a pipeline on gold docs; put several pipelines' scores side by side."""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import spacy
import typer
from wasabi import msg

from spacy_nested.cli._util import app
from spacy_nested.evaluation.report import evaluate, metrics_files, render_report, write_metrics


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    docbin: Path = typer.Argument(..., help="Gold .spacy DocBin", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Metrics JSON to write (stdout if unset)", dir_okay=False
    ),
    spans_key: str = typer.Option("nested", "--spans-key", "-k", help="Key of the gold spans"),
    pred_key: Optional[str] = typer.Option(
        None, "--pred-key", help="Key the pipeline writes to (default: --spans-key)"
    ),
    batch_size: int = typer.Option(128, "--batch-size", "-b", help="Batch size of nlp.pipe"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Score a pipeline on a gold DocBin: P/R/F overall, per type, length and depth; words/s; peak RSS."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    metrics = evaluate(model, docbin, spans_key=spans_key, batch_size=batch_size, pred_key=pred_key)
    if output is None:
        print(json.dumps(metrics, indent=2))
        return
    write_metrics(metrics, output)


@app.command("report")
def report_cli(
    metrics_paths: List[Path] = typer.Argument(
        ..., help="Metrics JSON files from `evaluate`, or folders of them", exists=True
    ),
    output_dir: Path = typer.Option(
        ..., "--output-dir", "-o", help="Folder for report.md, report.json and f1_by_length.png"
    ),
) -> None:
    """Render the metrics of several pipelines side by side, named by their file stems."""
    metrics: Dict[str, Dict[str, Any]] = {}
    for path in metrics_files(metrics_paths):
        if path.stem in metrics:
            raise typer.BadParameter(f"two metrics files are named '{path.stem}'", param_hint="METRICS_PATHS")
        metrics[path.stem] = json.loads(path.read_text(encoding="utf8"))
    for path in render_report(metrics, output_dir):
        msg.good(f"wrote {path}")
