"""What the package's layout promises: heads and codecs import no spaCy; defaults live once.

* ``heads/`` (torch) and ``codecs/`` (numpy) are the papers' math: importing any of their
  modules in a fresh interpreter must not load spaCy.
* A head setting is written once, in its factory's default config: building each factory
  with its defaults hands exactly those values to the torch head.
* Every registered name is also an entry point, so configs work without ``--code``.
"""
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


ENTRY_POINT_REGISTRIES = {
    "spacy_architectures": "architectures",
    "spacy_misc": "misc",
    "spacy_scorers": "scorers",
    "spacy_tokenizers": "tokenizers",
    "spacy_readers": "readers",
    "spacy_augmenters": "augmenters",
    "spacy_callbacks": "callbacks",
}


def test_every_registration_is_an_entry_point():
    declared = {group: {ep.name: ep for ep in entry_points(group=group)} for group in ENTRY_POINT_REGISTRIES}
    for group, table in (("spacy_architectures", registrations.ARCHITECTURES), ("spacy_misc", registrations.MISC),
                         ("spacy_callbacks", registrations.CALLBACKS)):  # fmt: skip
        for name, func in table.items():
            assert declared[group][name].value == f"{func.__module__}:{func.__name__}", name


@pytest.mark.parametrize("group", sorted(ENTRY_POINT_REGISTRIES))
def test_every_entry_point_loads_what_spacy_registers_under_its_name(group):
    """A config naming an entry point's name gets the function the entry point points to."""
    ours = [ep for ep in entry_points(group=group) if ep.value.startswith("spacy_nested.")]
    assert ours, f"no spacy_nested entry point in {group}"
    for ep in ours:
        registered = spacy.registry.get(ENTRY_POINT_REGISTRIES[group], ep.name)
        assert registered is ep.load(), ep.name
