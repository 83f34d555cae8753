"""Bring older configs up to date: flat settings into their groups, new settings written out.

Configs and pipelines written before the settings groups (``segmenter``,
``sampling``, ``loss``, ``decoder``) name their settings at the top of a
component block, for example ``[components.locate_label_ner] nms_iou = 0.7``.
spaCy refuses them ("unexpected argument") before a factory runs, so they
cannot keep working; ``upgrade_config`` moves each one to its new place
(each detector's ``MOVED``: ``nms_iou`` -> ``decoder.iou_threshold``), filling
the rest of a group from the factory's default config, and
``upgrade_pipeline`` does that to a saved pipeline's ``config.cfg`` and drops
the moved settings from each component's stored ``cfg``. Weights are untouched
and predictions do not change (``tests/test_saved_pipelines.py``).

Settings added to a detector since a config was written (``decoder.none_veto``,
and ``proposer_regressor_ner``'s whole ``decoder``) are written into it with
their factory defaults. spaCy fills them in anyway when it builds the
component, so nothing changes, but it refuses to override a setting the saved
file does not name: ``spacy.load(path, config=...)`` with
``decoder.none_veto`` fails on an older pipeline until it is upgraded. A group
whose registered function differs from the default's (another decoder, another
model architecture) is left alone, as spaCy's own merge of the defaults does.

    python -m spacy_nested upgrade-config training/genia/cpu/locate_label/model-best
    python -m spacy_nested upgrade-config my_old.cfg
"""
import copy
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import srsly
import typer
from spacy.language import Language
from thinc.api import Config
from wasabi import msg

from ._cli_util import app, fail
from .pipeline import boundary_offset, locate_label, proposer_regressor

MOVED: Dict[str, Mapping[str, str]] = {
    "locate_label_ner": locate_label.MOVED,
    "boundary_offset_ner": boundary_offset.MOVED,
    "proposer_regressor_ner": proposer_regressor.MOVED,
}
KEPT_CFG = ("labels", "spans_key")  # what the components store in cfg now


def upgrade_config(config: Config) -> Tuple[Config, List[str]]:
    """A copy of ``config`` with every moved setting in its group, and what moved (one line each)."""
    config = copy.deepcopy(config)
    moves: List[str] = []
    for name, block in config.get("components", {}).items():
        if block.get("factory") not in MOVED:
            continue
        moved = MOVED[block["factory"]]
        defaults = Language.get_factory_meta(block["factory"]).default_config or {}
        for key in [k for k in block if k in moved]:
            group, field = moved[key].split(".")
            if group not in block:
                block[group] = copy.deepcopy(dict(defaults[group]))
            block[group][field] = block.pop(key)
            moves.append(f"[components.{name}] {key} -> [components.{name}.{group}] {field}")
        moves += [
            f"[components.{name}{where}] {key} = {value!r} (added: the default)"
            for where, key, value in _add_missing(block, defaults)
        ]
    return config, moves


def _add_missing(block: Dict[str, Any], defaults: Mapping[str, Any], where: str = "") -> List[Tuple[str, str, Any]]:
    """Copy into ``block`` what ``defaults`` has and it lacks, in groups of the same registered function."""
    if _registered_name(block) != _registered_name(defaults):
        return []
    added = []
    for key, value in defaults.items():
        if key not in block:
            block[key] = copy.deepcopy(value)
            added.append((where, key, value))
        elif isinstance(value, Mapping) and isinstance(block[key], dict):
            added += _add_missing(block[key], value, f"{where}.{key}")
    return added


def _registered_name(block: Mapping[str, Any]) -> Optional[Tuple[str, Any]]:
    """The ``@registry = "name"`` line of a config group, if it has one."""
    return next(((k, v) for k, v in block.items() if k.startswith("@")), None)


def upgrade_pipeline(path: Path) -> List[str]:
    """Upgrade a config file, or a pipeline folder (its config.cfg and components' cfg), in place."""
    config_path = path / "config.cfg" if path.is_dir() else path
    config = Config().from_disk(config_path, interpolate=False)
    upgraded, moves = upgrade_config(config)
    if moves:
        upgraded.to_disk(config_path, interpolate=False)
    if path.is_dir():
        for name, block in upgraded.get("components", {}).items():
            cfg_path = path / name / "cfg"
            if block.get("factory") in MOVED and cfg_path.exists():
                stored = srsly.read_json(cfg_path)
                srsly.write_json(cfg_path, {k: v for k, v in stored.items() if k in KEPT_CFG})
    return moves


@app.command("upgrade-config")
def upgrade_config_cli(
    path: Path = typer.Argument(..., help="A config file, or a saved pipeline folder (its config.cfg)", exists=True),
) -> None:
    """Move the flat detector settings of an older config or pipeline into their groups, and write
    out the settings added since with their defaults, in place."""
    try:
        moves = upgrade_pipeline(path)
    except (OSError, ValueError, KeyError) as err:
        fail(f"{path}: {err}")
    if not moves:
        msg.info(f"{path}: nothing to upgrade")
    for move in moves:
        msg.good(move)
