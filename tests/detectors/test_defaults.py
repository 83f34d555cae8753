"""``add_pipe(X)`` gives the settings of configs/genia_X_cpu.cfg (the measured best on spaCy's CPU
tok2vec), and ``paper_settings(X)`` on top of them gives the paper's, those of configs/genia_X.cfg."""
from pathlib import Path
from typing import Any, Dict

import pytest
import spacy
from spacy.language import Language
from thinc.api import Config

import spacy_nested
from spacy_nested.detectors.boundary_offset import component as boundary_offset  # noqa: F401  (the factories)
from spacy_nested.ml.bridge import get_torch_head

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DETECTORS = ["locate_label", "boundary_offset", "proposer_regressor"]
# What a training config sets for its own reasons: the encoder, the seed it shares with the run,
# the head's learning rate relative to the transformer's optimizer.
NOT_SETTINGS = ("factory", "model.tok2vec", "sampling.seed", "model.learn_rate_scale")


def _flat(block: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _settings(block: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in _flat(block).items() if not k.startswith(NOT_SETTINGS)}


def _config_block(name: str, factory: str) -> Dict[str, Any]:
    return Config().from_disk(CONFIGS / f"{name}.cfg", interpolate=False)["components"][factory]


@pytest.mark.parametrize("detector", DETECTORS)
def test_add_pipe_gives_the_cpu_configs_settings(detector):
    factory = f"{detector}_ner"
    defaults = _settings(dict(Language.get_factory_meta(factory).default_config))
    cpu = _settings(_config_block(f"genia_{detector}_cpu", factory))
    assert cpu == {k: v for k, v in defaults.items() if k in cpu}
    assert len(cpu) >= 15


@pytest.mark.parametrize("detector", DETECTORS)
def test_paper_settings_give_the_paper_configs_settings_and_reach_the_head(detector):
    factory = f"{detector}_ner"
    paper = spacy_nested.paper_settings(factory)
    merged = Config(dict(Language.get_factory_meta(factory).default_config)).merge(paper)
    expected = _settings(_config_block(f"genia_{detector}", factory))
    assert expected == {k: v for k, v in _settings(merged).items() if k in expected}
    head = get_torch_head(spacy.blank("en").add_pipe(factory, config=paper).model)
    for key, value in paper.get("model", {}).items():
        assert getattr(head, key) == value, key


def test_paper_settings_name_the_detectors_only():
    with pytest.raises(ValueError, match="no paper settings for 'spancat'"):
        spacy_nested.paper_settings("spancat")
