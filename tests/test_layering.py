"""What the package's layout promises: heads and codecs import no spaCy; defaults live once.

* ``heads/`` (torch) and ``codecs/`` (numpy) are the papers' math: importing any of their
  modules in a fresh interpreter must not load spaCy.
* A head setting is written once, in its factory's default config: building each factory
  with its defaults hands exactly those values to the torch head.
* Every registered name is also an entry point, so configs work without ``--code``.
"""
import importlib
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import spacy
from spacy.language import Language

import spacy_nested.codecs
import spacy_nested.heads
from spacy_nested import registrations
from spacy_nested.models.bridge import get_torch_head

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
NOT_HEAD = ("@architectures", "tok2vec", "mixed_precision", "learn_rate_scale")


def _modules(package):
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


@pytest.mark.parametrize("module", _modules(spacy_nested.heads) + _modules(spacy_nested.codecs))
def test_math_modules_import_no_spacy(module):
    code = f"import sys, {module}; print('spacy' in sys.modules, 'thinc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], f"importing {module} loads spacy/thinc"


@pytest.mark.parametrize("factory", DETECTORS)
def test_factory_defaults_reach_the_torch_head(factory):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe(factory)
    head = get_torch_head(pipe.model)
    defaults = Language.get_factory_meta(factory).default_config["model"]
    settings = {k: v for k, v in defaults.items() if k not in NOT_HEAD}
    assert len(settings) >= 6
    for key, value in settings.items():
        got = getattr(head, key)
        assert (list(got) if isinstance(value, list) else got) == value, key
    assert pipe.model.get_ref("head").shims[0].learn_rate_scale == defaults["learn_rate_scale"]  # the optimizer step's
    # and the pipe's groups are exactly their default blocks
    for group in ("segmenter", "loss", "decoder", "sampling"):
        block = Language.get_factory_meta(factory).default_config.get(group)
        if block is not None:
            fields = {k: v for k, v in block.items() if not k.startswith("@")}
            assert {k: getattr(getattr(pipe, group), k) for k in fields} == fields


def test_every_registration_is_an_entry_point():
    declared = {
        group: {ep.name: ep.value for ep in entry_points(group=group)}
        for group in ("spacy_architectures", "spacy_misc", "spacy_scorers", "spacy_tokenizers")
    }
    for name, func in registrations.ARCHITECTURES.items():
        assert declared["spacy_architectures"][name] == f"{func.__module__}:{func.__name__}"
    for name, func in registrations.MISC.items():
        assert declared["spacy_misc"][name] == f"{func.__module__}:{func.__name__}"
    for value in declared["spacy_misc"].values():
        module, attr = value.split(":")
        assert getattr(importlib.import_module(module), attr) in registrations.MISC.values()
