"""What the package's layout promises: the math imports no spaCy; no import circle; defaults live once.

* Each detector's head, loss (torch) and codec (numpy), the shared torch layers, the span
  utilities and the ensemble's merge rules are the papers' math: importing any of these
  modules in a fresh interpreter must not load spaCy or thinc. Only `spacy_nested.ml.bridge`
  and the thinc model around the heads touch both sides.
* Importing any module of the package first, in a fresh interpreter, works: no import circle.
* A head setting is written once, in its factory's default config: building each factory
  with its defaults hands exactly those values to the torch head.
* Every registered name is also an entry point, so configs work without ``--code``.
"""
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

import spacy_nested
from spacy_nested import registrations
from spacy_nested.ml.bridge import get_torch_head

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
NOT_HEAD = ("@architectures", "tok2vec", "mixed_precision", "learn_rate_scale")


ALL_MODULES = sorted(m.name for m in pkgutil.walk_packages(spacy_nested.__path__, "spacy_nested."))
MATH_FILES = ("head", "codec", "loss", "seeds", "nms")
MATH_MODULES = [m for m in ALL_MODULES if m.startswith("spacy_nested.detectors.") and m.rsplit(".", 1)[1] in MATH_FILES]
MATH_MODULES += ["spacy_nested.ml.layers", "spacy_nested.ml.int8", "spacy_nested.spans", "spacy_nested.ensemble.merge"]


def test_every_detector_folder_has_the_same_four_files():
    for detector in ("locate_label", "boundary_offset", "proposer_regressor"):
        for part in ("component", "head", "codec", "loss"):
            assert f"spacy_nested.detectors.{detector}.{part}" in ALL_MODULES


def test_few_modules_at_the_root():
    root = sorted(p.name for p in Path(spacy_nested.__path__[0]).glob("*.py"))
    assert len(root) <= 8, root


FIRST_IMPORTS = """
import importlib, sys
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n == "spacy_nested" or n.startswith("spacy_nested.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except ImportError as err:
        print(f"{module}: {err}")
"""


def test_every_module_imports_first():
    """No import circle: each module can be the first of the package a program imports."""
    out = subprocess.run([sys.executable, "-c", FIRST_IMPORTS, *ALL_MODULES], capture_output=True, text=True, check=True)
    assert out.stdout == ""


MATH_IMPORTS = """
import importlib, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
    loaded = [name for name in ("spacy", "thinc") if name in sys.modules]
    if loaded:
        print(module, *loaded)
        break
"""


def test_math_modules_import_no_spacy():
    """Imported one after another in a fresh interpreter, none of them loads spaCy or thinc (the first
    that does is named)."""
    assert len(MATH_MODULES) >= 15
    out = subprocess.run([sys.executable, "-c", MATH_IMPORTS, *MATH_MODULES], capture_output=True, text=True, check=True)
    assert out.stdout == ""


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
