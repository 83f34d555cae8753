"""``quantize``: a trained pipeline whose transformer (optionally also the detectors' heads) runs in dynamic int8 on the CPU."""
from pathlib import Path

import spacy
import typer
from wasabi import msg

from spacy_nested.cli._util import app, fail
from spacy_nested.ensemble.build import save_atomically
from spacy_nested.ml.quantize import ALL, int8_layers, quantize_pipeline


@app.command("quantize")
def quantize_cli(
    model: Path = typer.Argument(..., help="Trained pipeline folder", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Where to write the quantized pipeline (a folder, written all or nothing)"),
    heads: bool = typer.Option(False, "--heads/--no-heads", help="Also quantize the Linear layers of the detectors' heads"),
    per_channel: bool = typer.Option(
        True, "--per-channel/--per-tensor", help="int8 weights with a scale per output row (default) or one per matrix"
    ),
    layers: str = typer.Option(
        ALL,
        "--layers",
        help="The transformer's Linear layers to quantize: 'all', or a regular expression searched in their module "
        "names (e.g. 'encoder\\.layer\\.[0-4]\\.' leaves a 6-layer model's last layer in fp32)",
    ),
) -> None:
    """Quantize a pipeline's transformer to dynamic int8 (torch.ao quantize_dynamic on its Linear layers).

    OUTPUT holds the fp32 weights and a config whose [nlp] after_pipeline_creation callback quantizes them
    when spacy.load builds the pipeline: spacy.load(OUTPUT) gives the int8 pipeline, with no flag.
    """
    try:
        quantized = quantize_pipeline(spacy.load(model), heads=heads, layers=layers, per_channel=per_channel)
        save_atomically(quantized, output)
    except (ValueError, OSError) as err:
        fail(str(err))
    for name, counts in int8_layers(quantized).items():
        msg.info(f"{name}: " + ", ".join(f"{n} int8 Linear layers in its {kind}" for kind, n in counts.items()))
    msg.good(f"quantized pipeline saved to {output}: spacy.load runs it in int8 on the CPU")
