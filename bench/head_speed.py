"""Prediction speed of pipelines on one CPU thread, in words per CPU second, with variants of the heads (issue 15).

    OMP_NUM_THREADS=1 python bench/head_speed.py MODEL... --dev /tmp/genia/dev.spacy [--variants fp32 int8]

Each MODEL (a saved pipeline: trained, or initialized with ``bench/speed.py
--init``) predicts the first ``--docs`` dev sentences, rebuilt from their words
and sentence starts so that no annotation is reused, with ``nlp.pipe(batch_size=
--batch-size)`` after a warm-up batch, in a fresh process per measurement. The
figure is words per CPU second of that process (``time.process_time``), steadier
than wall time on a shared machine. ``--repeat`` rounds alternate the models and
variants, so that each ratio is taken in one sitting. Variants:

* ``fp32``: the pipeline as saved;
* ``int8``: the heads' ``nn.Linear``, ``nn.GRU`` and ``nn.LSTM`` layers quantized
  to int8 on load (``torch.ao.quantization.quantize_dynamic``);
* ``inference_mode``: the heads' forward passes under ``torch.inference_mode``
  instead of thinc's ``no_grad``;
* ``encoder_only``: only the shared encoder pipe (``tok2vec`` or ``transformer``)
  runs, every pipe listening to it is disabled: the speed no head over that encoder
  can beat, whatever it is made of (issue 15's ceiling).

``--code DIR...`` measures other versions of the code as well, alternating with
this one: each DIR is a checkout of the repository (``git worktree add /tmp/before
REV``), put first on the child's ``PYTHONPATH``. The bench then checks that each
version predicts the same spans as this one and gives the largest score difference,
so a change that should only be faster is measured and checked in one sitting.

A variant that fails (a head reading a quantized layer's weights itself) is
reported with its error and left out. ``--profile`` prints cProfile's 35 costliest calls (by cumulative time) of one
run instead. A pipeline holding a spancat has its threshold set above 1 (it
writes no spans, as in ``bench/speed.py --init``).
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

VARIANTS = ("fp32", "int8", "inference_mode", "encoder_only")
ENCODER_PIPES = ("tok2vec", "transformer")


def _apply_variant(nlp: Any, variant: str) -> None:
    import torch
    from thinc.shims.pytorch import PyTorchShim

    if variant == "int8":
        for _, pipe in nlp.pipeline:
            model = getattr(pipe, "model", None)
            if model is not None and model.has_ref("head"):
                shim = model.get_ref("head").shims[0]
                layers = {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM}
                shim._model = torch.ao.quantization.quantize_dynamic(shim._model, layers, dtype=torch.qint8)
    elif variant == "inference_mode":

        def predict(self: Any, inputs: Any) -> Any:
            self._model.eval()
            with torch.inference_mode():
                out = self._model(*inputs.args, **inputs.kwargs)
            self._model.train()
            return out

        PyTorchShim.predict = predict  # type: ignore[method-assign]
    elif variant == "encoder_only":
        encoders = [name for name in nlp.pipe_names if name in ENCODER_PIPES]
        if not encoders:
            raise ValueError(f"encoder_only: no {' or '.join(ENCODER_PIPES)} pipe in {nlp.pipe_names}")
        nlp.select_pipes(enable=encoders)


def predictions(docs: List[Any]) -> List[List[Any]]:
    """Every span group of every doc: (start, end, label, score) per span."""
    out = []
    for doc in docs:
        for key, group in sorted(doc.spans.items()):
            scores = group.attrs.get("scores")
            spans = [[s.start, s.end, s.label_, None if scores is None else float(scores[i])] for i, s in enumerate(group)]
            out.append([key, spans])
    return out


def compare(reference: List[List[Any]], other: List[List[Any]]) -> str:
    """How ``other``'s predictions differ from ``reference``'s."""
    groups = sum(1 for (_, a), (_, b) in zip(reference, other) if [x[:3] for x in a] != [x[:3] for x in b])
    gaps = [abs(x[3] - y[3]) for (_, a), (_, b) in zip(reference, other) for x, y in zip(a, b) if x[3] is not None]
    spans = sum(len(a) for _, a in reference)
    return f"{spans} spans, {groups} span groups differ, largest score difference {max(gaps, default=0.0):.1e}"


def measure(model: str, dev: str, variant: str, n_docs: int, batch_size: int, profile: bool) -> Dict[str, Any]:
    """Load, apply the variant, warm up, then time nlp.pipe over the dev sentences (this process)."""
    import spacy
    import torch
    from spacy.tokens import Doc, DocBin

    torch.set_num_threads(1)
    nlp = spacy.load(model)
    for _, pipe in nlp.pipeline:
        if "threshold" in getattr(pipe, "cfg", {}) and type(pipe).__name__ == "SpanCategorizer":
            getattr(pipe, "cfg")["threshold"] = 1.1
    _apply_variant(nlp, variant)
    gold = list(DocBin().from_disk(dev).get_docs(nlp.vocab))[:n_docs]
    docs = [Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[bool(t.is_sent_start) for t in d]) for d in gold]
    list(nlp.pipe(docs[:batch_size], batch_size=batch_size))  # warm-up
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    start = time.process_time()
    predicted = list(nlp.pipe(docs, batch_size=batch_size))
    cpu = time.process_time() - start
    result: Dict[str, Any] = {"model": model, "variant": variant, "words": sum(len(d) for d in docs), "cpu_s": cpu}
    result["predictions"] = predictions(predicted)
    result["words_per_cpu_s"] = result["words"] / cpu
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        result["profile"] = out.getvalue()
    return result


def _names(models: List[str]) -> Dict[str, str]:
    """Each model's shortest trailing path that no other model shares (its folder, with its parent
    when it is a model-best/-last/-tuned, and more parents while two models would read the same)."""
    parts = {model: Path(model).parts for model in models}
    depth = {model: 2 if Path(model).name.startswith("model-") else 1 for model in models}
    while True:
        names = {model: "/".join(parts[model][-depth[model]:]) for model in models}
        clashing = [m for m in models if list(names.values()).count(names[m]) > 1 and depth[m] < len(parts[m])]
        if not clashing:
            return names
        for model in clashing:
            depth[model] += 1


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dev", required=True)
    parser.add_argument("--variants", nargs="+", default=["fp32"], choices=VARIANTS)
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--code", nargs="+", default=[], help="checkouts of other versions to measure too")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)  # measure MODEL with this variant
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.models[0], args.dev, args.child, args.docs, args.batch_size, args.profile)))
        return
    results: Dict[Tuple[str, str], List[float]] = {}
    reference: Dict[Tuple[str, str], List[List[Any]]] = {}
    checks: Dict[Tuple[str, str], str] = {}
    names = _names(args.models)
    for _ in range(1 if args.profile else args.repeat):
        for model in args.models:
            for variant in args.variants:
                for code in ["", *args.code]:
                    label = variant + (f" @ {Path(code).name}" if code else "")
                    cmd = [sys.executable, __file__, model, "--dev", args.dev, "--docs", str(args.docs),
                           "--batch-size", str(args.batch_size), "--child", variant]  # fmt: skip
                    cmd += ["--profile"] if args.profile else []
                    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
                    if code:
                        env["PYTHONPATH"] = os.pathsep.join([str(Path(code).resolve()), env.get("PYTHONPATH", "")])
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if proc.returncode:  # a head that reads a layer's weights itself cannot take int8 layers
                        error = (proc.stderr.strip().splitlines() or ["?"])[-1]
                        print(f"{names[model]}\t{label}\tfailed: {error}", flush=True)
                        results.setdefault((names[model], label), []).append(float("nan"))
                        continue
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    if args.profile:
                        print(result["profile"])
                    if not code:
                        reference[(model, variant)] = result["predictions"]
                    elif (model, variant) in reference:
                        checks[(names[model], label)] = compare(reference[(model, variant)], result["predictions"])
                    results.setdefault((names[model], label), []).append(result["words_per_cpu_s"])
                    print(f"{names[model]}\t{label}\t{result['words_per_cpu_s']:,.0f} words per CPU s", flush=True)
    print("\n| pipeline | variant | words per CPU s (each round) | predictions against this code |\n|---|---|---|---|")
    for (name, label), speeds in results.items():
        cells = " / ".join(f"{s:,.0f}" if s == s else "failed" for s in speeds)
        print(f"| {name} | {label} | {cells} | {checks.get((name, label), '')} |")


if __name__ == "__main__":
    main()
