"""``tune-ensemble``, ``combine-pipelines`` and ``shared-encoder-config``: building and tuning a nested_ensemble."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from spacy_nested.cli._util import app, fail
from spacy_nested.ensemble.build import combine_pipelines, parse_members, save_atomically, shared_encoder_config
from spacy_nested.ensemble.merge import RULES
from spacy_nested.ensemble.tune import MEMBER_THRESHOLDS, OWN, parse_member_thresholds, tune_ensemble


@app.command("tune-ensemble")
def tune_ensemble_cli(
    model: Path = typer.Argument(..., help="Pipeline folder with a nested_ensemble", exists=True, file_okay=False),
    docbin: Path = typer.Argument(..., help="Gold DocBin (dev)", exists=True, dir_okay=False),
    rule: str = typer.Option("average", "--rule", help="average: weights and threshold; vote: min_votes"),
    n_trials: int = typer.Option(21, "--trials", help="Thresholds tried, evenly from 0 to 1"),
    member_thresholds: str = typer.Option(
        " ".join("own" if t is OWN else str(t) for t in MEMBER_THRESHOLDS),
        "--member-thresholds",
        help="The members' thresholds tried, each applied to all members ('own': each member's own)",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the tuned pipeline (default MODEL-tuned)"),
    pipe_name: Optional[str] = typer.Option(None, "--pipe", help="The ensemble's name, when the pipeline has several"),
    gold_key: Optional[str] = typer.Option(None, "--spans-key", help="Key of the gold spans (default: the ensemble's)"),
) -> None:
    """Tune a nested_ensemble's weights and threshold (or min_votes) on dev; predicts each member once."""
    if rule not in RULES:
        raise typer.BadParameter(f"must be one of {list(RULES)}", param_hint="--rule")
    if n_trials < 2:
        raise typer.BadParameter("at least 2", param_hint="--trials")
    try:
        tried = parse_member_thresholds(member_thresholds)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--member-thresholds")
    try:
        found = tune_ensemble(
            model, docbin, rule=rule, n_trials=n_trials, member_thresholds=tried, output=output, pipe_name=pipe_name,
            gold_key=gold_key,
        )
    except (ValueError, OSError) as err:
        fail(str(err))
    print_tuned(found)


def print_tuned(found: Dict[str, Any]) -> None:
    """What ``tune_ensemble`` found: each member's scores, the best setting, where it was saved."""
    for member, s in found["members"].items():
        msg.info(f"member {member}: P {100 * s['p']:.2f} R {100 * s['r']:.2f} F {100 * s['f']:.2f}")
    best = found["best"]
    weights = ", ".join(f"{w:.3f}" for w in best["weights"])
    setting = f"threshold {best['threshold']:.3f}" if best["rule"] == "average" else f"min_votes {best['min_votes']}"
    at = ", ".join("–" if t is None else f"{t:.2f}" for t in best["member_thresholds"])
    msg.good(
        f"best of {len(found['trials'])} settings: rule {best['rule']}, weights [{weights}], {setting}, "
        f"member thresholds [{at}]: "
        f"P {100 * best['p']:.2f} R {100 * best['r']:.2f} F {100 * best['f']:.2f} "
        f"(configured setting: F {100 * found['configured']['f']:.2f}); saved to {found['output']}"
    )


@app.command("combine-pipelines")
def combine_pipelines_cli(
    output: Path = typer.Argument(..., help="Where to write the combined pipeline"),
    members: List[str] = typer.Argument(..., help="KEY=MODEL, two or more: a trained pipeline and the key its detector writes"),
    spans_key: str = typer.Option("nested", "--spans-key", help="The key the ensemble writes"),
) -> None:
    """Combine any trained detector pipelines (the same detector several times too) under one nested_ensemble."""
    try:
        nlp = combine_pipelines(parse_members(members), spans_key)
        save_atomically(nlp, output)
    except (ValueError, OSError) as err:
        fail(str(err))
    msg.good(f"nested_ensemble of {[k for k, _ in parse_members(members)]} saved to {output}; tune it with tune-ensemble")


@app.command("shared-encoder-config")
def shared_encoder_config_cli(
    output: Path = typer.Argument(..., help="The training config to write (.cfg)", dir_okay=False),
    members: List[str] = typer.Argument(..., help="KEY=CONFIG, two or more: a detector's training config, the key it writes"),
) -> None:
    """Write the training config of several detectors over one shared encoder, then a nested_ensemble."""
    try:
        config = shared_encoder_config(parse_members(members))
        header = (
            "# Written by `python -m spacy_nested shared-encoder-config` from "
            + " ".join(members)
            + ": one encoder, a detector per member key, then a nested_ensemble.\n"
        )
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(header + config.to_str(interpolate=False), encoding="utf8")
        tmp.replace(output)
    except (ValueError, OSError) as err:
        fail(str(err))
    msg.good(f"training config of {[k for k, _ in parse_members(members)]} over one encoder written to {output}")
