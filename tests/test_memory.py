"""Training memory stays flat with the ``spacy_nested.flat_training_memory.v1`` callback.

A small locate_label pipeline whose ``[initialize.before_init]`` is that callback (as the
project's training configs have it) is updated on fresh batches whose shapes change at every
update (3 docs of 30 to 300 tokens), in a fresh interpreter on one thread, so that what earlier
tests left in the heap does not hide a growth. The peak RSS (``VmHWM``, reset between windows)
over the last 60 of 240 updates is compared with the peak over updates 41-100. With thinc's own
shim and oneDNN's kernel cache the process grows by 30-50 MB over those updates (the parameter
chain and the cached kernels per shape fragment the heap); with the callback's settings by a few
MB at most.

``python -m tests.test_memory [on|leak|onednn|off]`` prints the figures with the fix on, with
either half of it undone, or with neither (no callback, thinc's shim).
"""
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
UPDATES, EARLY, LATE = 240, (41, 100), (181, 240)
BOUND_MB = 12.0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads and resets the peak RSS through /proc")
def test_training_rss_stays_flat():
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one thread: the same heap on any machine, and fast on a busy one
    out = subprocess.run(
        [sys.executable, "-m", "tests.test_memory"], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["growth_mb"] < BOUND_MB, result


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))


def _window_peak_mb() -> float:
    """Peak RSS since the last call: VmHWM, then reset to the current RSS."""
    peak = _status_mb("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak


def _batch(nlp, rng: random.Random) -> list:
    """3 docs of 30..300 tokens: the fixture's sentences, concatenated at random."""
    from spacy.training import Example

    from tests.detectors.nested_fixture import SENTENCES, make_doc

    batch = []
    for _ in range(3):
        words: List[str] = []
        spans: List[Tuple[int, int, str]] = []
        target = rng.randint(30, 300)
        while len(words) < target:
            text, sent_spans = rng.choice(SENTENCES)
            spans += [(s + len(words), e + len(words), label) for s, e, label in sent_spans]
            words += text.split(" ")
        text = " ".join(words)
        batch.append(Example(nlp.make_doc(text), make_doc(nlp.vocab, text, spans)))
    return batch


def _flat_memory_callback(mode: str) -> dict:
    """The ``[initialize.before_init]`` block of a training config, or half of it (the hand check that
    the test can fail): ``onednn`` keeps oneDNN's kernel cache, ``off`` has no callback."""
    if mode == "off":
        return {}
    return {"@callbacks": "spacy_nested.flat_training_memory.v1", "onednn_kernel_cache": None if mode == "onednn" else 0}


def _undo(mode: str) -> None:
    """thinc's own optimizer step for the heads (``leak``, ``off``)."""
    from thinc.api import PyTorchShim

    from spacy_nested.ml import bridge

    if mode in ("leak", "off"):
        bridge.InPlaceUpdateShim.finish_update = PyTorchShim.finish_update  # type: ignore[method-assign]


def measure(mode: str = "on") -> dict:
    import spacy
    import torch

    from tests.detectors.nested_fixture import build_nlp

    _undo(mode)
    torch.set_num_threads(1)
    spacy.util.fix_random_seed(0)
    rng = random.Random(0)
    nlp = build_nlp("locate_label_ner")
    callback = _flat_memory_callback(mode)
    if callback:
        nlp.config["initialize"]["before_init"] = callback
    optimizer = nlp.initialize(lambda: [eg for _ in range(4) for eg in _batch(nlp, rng)])
    peaks = {}
    for step in range(1, UPDATES + 1):
        if step in (EARLY[0], LATE[0]):
            _window_peak_mb()
        nlp.update(_batch(nlp, rng), sgd=optimizer, drop=0.1)
        if step in (EARLY[1], LATE[1]):
            peaks[step] = _window_peak_mb()
    early, late = peaks[EARLY[1]], peaks[LATE[1]]
    return {"mode": mode, "early_peak_mb": early, "late_peak_mb": late, "growth_mb": late - early}


if __name__ == "__main__":
    print(json.dumps(measure(*sys.argv[1:2])))
