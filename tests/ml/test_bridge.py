import numpy
import pytest
import torch
from thinc.api import Model

from spacy_nested.detectors.locate_label.head import LocateLabelHead
from spacy_nested.ml.bridge import convert_segment_inputs, convert_tuple_outputs, deserialize_head, serialize_head
from tests.detectors.head_defaults import head_args


class _Shim:
    device = torch.device("cpu")


def _model():
    model = Model("probe", lambda *a: None)
    model._shims = [_Shim()]
    return model


def test_segments_are_padded_and_gradients_scattered_back():
    model = _model()
    vecs = [numpy.arange(12, dtype="f").reshape(6, 2), numpy.ones((3, 2), dtype="f")]
    segments = [(0, 0, 4), (0, 4, 6), (1, 0, 3)]
    args, backprop = convert_segment_inputs(model, (vecs, segments, (numpy.array([[0, 1, 2]]),)), True)
    X, lengths, extra = args.args
    assert X.shape[0] == 3 and X.shape[1] >= 4 and lengths.tolist() == [4, 2, 3]
    assert torch.equal(X[1, :2], torch.tensor(vecs[0][4:6]))
    assert extra.dtype == torch.long
    d_X = torch.zeros_like(X)
    d_X[1, :2] = 1.0
    d_X[2, :3] = 2.0
    d_X[0, 5:] = 99.0  # padding: must never reach a token
    d_vecs = backprop(type(args)(args=(d_X,), kwargs={}))
    assert d_vecs[0][:4].sum() == 0 and (d_vecs[0][4:] == 1).all()
    assert (d_vecs[1] == 2).all()


def test_outputs_convert_and_only_float_outputs_get_gradients():
    model = _model()
    a = torch.randn(3, requires_grad=True)
    out, backprop = convert_tuple_outputs(model, (None, (a * 2, torch.tensor([1, 2]))), True)
    assert out[0].dtype == numpy.float32 and out[1].dtype.kind == "i"
    grads = backprop([numpy.ones(3, dtype="f"), None])
    assert len(grads.args[0]) == 1 and torch.equal(grads.kwargs["grad_tensors"][0], torch.ones(3))


def test_head_serialization_restores_sizes_and_weights():
    head = LocateLabelHead(**head_args("locate_label", hidden_width=8)).resize(5, 3)
    data = serialize_head(head)
    fresh = deserialize_head(LocateLabelHead(**head_args("locate_label", hidden_width=8)), data, torch.device("cpu"))
    assert fresh.dims() == {"n_inputs": 5, "n_labels": 3}
    for (k, v), (k2, v2) in zip(head.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def _step_sizes(learn_rate_scale: float) -> numpy.ndarray:
    """How far one Adam step at learn rate 0.001 moves each head parameter."""
    from thinc.api import Adam

    from spacy_nested.ml.bridge import wrap_head

    torch.manual_seed(0)
    head = torch.nn.Linear(4, 3)
    wrapper = wrap_head(head, mixed_precision=False, learn_rate_scale=learn_rate_scale)
    before = [p.detach().clone() for p in head.parameters()]
    head(torch.ones(2, 4)).sum().backward()
    wrapper.finish_update(Adam(0.001))
    return numpy.concatenate([(p.detach() - b).abs().flatten().numpy() for p, b in zip(head.parameters(), before)])


def test_the_head_steps_at_its_learn_rate_scale():
    base, scaled = _step_sizes(1.0), _step_sizes(20.0)
    assert base.min() > 0
    numpy.testing.assert_allclose(scaled, 20 * base, rtol=1e-3)


def test_a_learn_rate_scale_not_above_zero_is_refused():
    import pytest

    from spacy_nested.ml.bridge import wrap_head

    with pytest.raises(ValueError, match="learn_rate_scale must be > 0"):
        wrap_head(torch.nn.Linear(2, 2), mixed_precision=False, learn_rate_scale=0.0)


def test_training_gives_the_heap_back_every_few_optimizer_steps(monkeypatch):
    """Every ``TRIM_EVERY`` head updates of the process, glibc's free heap pages go back to the system."""
    from thinc.api import Adam

    from spacy_nested.ml import bridge

    calls = []
    monkeypatch.setattr(bridge, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(bridge, "_steps", 0)
    monkeypatch.setattr(bridge, "TRIM_EVERY", 3)
    head = torch.nn.Linear(4, 3)
    wrapper = bridge.wrap_head(head, mixed_precision=False, learn_rate_scale=1.0)
    optimizer = Adam(0.001)
    for _ in range(7):
        head(torch.ones(2, 4)).sum().backward()
        wrapper.finish_update(optimizer)
    assert calls == [0, 0]  # after updates 3 and 6
    monkeypatch.setattr(bridge, "TRIM_EVERY", 0)  # off
    for _ in range(6):
        wrapper.finish_update(optimizer)
    assert calls == [0, 0]


def test_malloc_trim_is_found_on_glibc():
    import platform

    from spacy_nested.ml import bridge

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert bridge._malloc_trim is not None and bridge._malloc_trim(0) in (0, 1)


def _python_bytes_left_by_updates(wrapper, n_updates: int = 100) -> int:
    """Python memory still allocated after ``n_updates`` optimizer steps of ``wrapper`` (after 20 first)."""
    import gc
    import tracemalloc

    from thinc.api import Adam

    optimizer = Adam(0.01)
    X = numpy.ones((2, 4), dtype="f")

    def steps(n: int) -> None:
        for _ in range(n):
            Y, backprop = wrapper.begin_update(X)
            backprop(numpy.ones_like(Y))
            wrapper.finish_update(optimizer)

    steps(20)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        steps(n_updates)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_any_torch_shim_can_take_the_in_place_step_and_then_leaves_nothing_per_update():
    from thinc.api import PyTorchWrapper_v3

    from spacy_nested.ml.bridge import InPlaceUpdateShim, update_in_place

    wrapper = PyTorchWrapper_v3(torch.nn.Linear(4, 4))  # thinc's own shim, as spacy-transformers' HFShim is
    # thinc's step leaves about 0.4 KB per parameter and update (84.8 KB here, 2 parameters, 100 updates)
    assert _python_bytes_left_by_updates(wrapper) > 20_000
    assert update_in_place(wrapper) == 1 and update_in_place(wrapper) == 0
    assert isinstance(wrapper.shims[0], InPlaceUpdateShim)
    weights = next(wrapper.shims[0]._model.parameters()).detach().clone()
    assert _python_bytes_left_by_updates(wrapper) < 2_000
    assert not torch.equal(weights, next(wrapper.shims[0]._model.parameters()))  # and it still learns


def test_the_flat_memory_callback_sets_what_a_training_config_names(monkeypatch):
    """``[initialize.before_init]`` = ``spacy_nested.flat_training_memory.v1``: the oneDNN cache (a
    value the user set wins), the heap trim, and the in-place step only for the components named."""
    import spacy
    from thinc.api import PyTorchWrapper_v3

    from spacy_nested.ml import bridge

    for key in (bridge.ONEDNN_CACHE, "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        monkeypatch.setenv(key, "")  # so that monkeypatch restores what was there (or nothing) after the test
        monkeypatch.delenv(key)
    monkeypatch.setattr(bridge, "TRIM_EVERY", 0)
    nlp = spacy.blank("en")
    for name in ("named", "other"):
        pipe = nlp.add_pipe("sentencizer", name=name)
        pipe.model = PyTorchWrapper_v3(torch.nn.Linear(2, 2))  # a component with a torch shim (as a transformer)
    make = spacy.registry.callbacks.get("spacy_nested.flat_training_memory.v1")
    make(onednn_kernel_cache=0, trim_every=7, in_place_updates=["named"])(nlp)
    assert bridge.os.environ[bridge.ONEDNN_CACHE] == "0" and bridge.TRIM_EVERY == 7
    assert isinstance(nlp.get_pipe("named").model.shims[0], bridge.InPlaceUpdateShim)
    assert not isinstance(nlp.get_pipe("other").model.shims[0], bridge.InPlaceUpdateShim)
    monkeypatch.setenv(bridge.ONEDNN_CACHE, "512")
    make(onednn_kernel_cache=0, trim_every=0, in_place_updates=True)(nlp)
    assert bridge.os.environ[bridge.ONEDNN_CACHE] == "512" and bridge.TRIM_EVERY == 0
    assert isinstance(nlp.get_pipe("other").model.shims[0], bridge.InPlaceUpdateShim)


@pytest.mark.slow
def test_importing_the_package_and_predicting_change_nothing_outside_it():
    """No oneDNN setting, heap trim or other component's shim changes unless a training config's
    callback asks for it (torch sets variables of its own: those are not checked)."""
    import os
    import subprocess
    import sys

    code = """
import os, spacy, torch
from thinc.api import PyTorchShim
nlp = spacy.load("tests/fixtures/saved/locate_label_ner")
other = spacy.blank("en").add_pipe("sentencizer")
from thinc.api import PyTorchWrapper_v3
wrapped = PyTorchWrapper_v3(torch.nn.Linear(2, 2))
nlp("IL-2 gene expression requires NF-kappa B activation")
from spacy_nested.ml import bridge
print(not any("PRIMITIVE_CACHE" in key for key in os.environ), bridge.TRIM_EVERY, type(wrapped.shims[0]) is PyTorchShim)
"""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if "PRIMITIVE_CACHE" not in key}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, env=env, check=True)
    out = run.stdout.split()
    assert out == ["True", "0", "True"], out
