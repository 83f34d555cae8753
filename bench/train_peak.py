"""Peak RSS and wall time of a full training of each pipeline.

    OMP_NUM_THREADS=1 python bench/train_peak.py --train /tmp/genia/train.spacy --dev /tmp/genia/dev.spacy \\
        --output-root training --pipelines spancat locate_label [--encoder cpu] [-- --system.seed 1]

Each pipeline trains with the spaCy project's own step, ``python
scripts/workflow.py train NAME --encoder ENCODER --output-root ROOT`` (its whole config:
6 epochs of GENIA train for the CPU configs, evaluation on dev included), in a
child process on one thread. When the child ends, the kernel's account of it
(``os.wait4``) gives its peak resident set size, the largest RSS it ever had,
and the bench writes it with the wall and CPU time to
``ROOT/ENCODER/NAME/train_peak.json``. The child's output goes to ``train.log``
beside it, and on Linux ``bench/rss_trace.py`` samples its RSS every
``--every`` seconds into ``train_rss.csv`` there (against its CPU seconds and the
logged step), which shows whether memory grows over the whole training rather
than only its peak. Arguments after ``--`` go to the training as config
overrides. ``--config CFG`` trains a config of one's own instead (``python -m
spacy train CFG``, into ``ROOT/ENCODER/<CFG's stem>``, with a ``TRAINED`` marker
when it ends): a shared-encoder ensemble from ``python -m spacy_nested
shared-encoder-config``, say.

A finished training is reused by ``workflow.py train``, so its peak cannot be
measured again: the bench then prints the figures it wrote when it ran, and
``--force`` (which deletes the run's ``TRAINED`` marker) trains again.
``--table`` prints the figures of earlier runs and runs nothing. Linux and macOS
(``ru_maxrss`` is in KiB on Linux, bytes on macOS).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss_trace import trace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PIPELINES = ["spancat", "span_finder", "locate_label", "boundary_offset", "proposer_regressor"]
RESULT = "train_peak.json"


def peak_mb(ru_maxrss: int) -> float:
    """``ru_maxrss`` in MiB (KiB on Linux, bytes on macOS)."""
    return ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def train_one(name: str, args: argparse.Namespace, extra: List[str], config: Optional[Path] = None) -> Dict[str, Any]:
    """Train ``name`` (or `config`, named ``name``) in a child process on one thread; its peak RSS, wall and CPU seconds."""
    output = args.output_root / args.encoder / name
    if args.force:
        (output / "TRAINED").unlink(missing_ok=True)
    elif (output / "TRAINED").exists():
        if (output / RESULT).exists():
            return json.loads((output / RESULT).read_text())
        raise SystemExit(f"{output} holds a finished training this bench did not measure: --force trains it again")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if config is None:
        cmd = [sys.executable, str(REPO / "scripts" / "workflow.py"), "train", name, "--encoder", args.encoder,
               "--output-root", str(args.output_root), "--paths.train", args.train, "--paths.dev", args.dev, *extra]
    else:
        cmd = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output),
               "--paths.train", args.train, "--paths.dev", args.dev, *extra]
    start = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    log = output / "train.log"
    print(f"training {name}: {log}", flush=True)
    with log.open("w") as handle:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    tracer = None
    if sys.platform.startswith("linux"):
        tracer = threading.Thread(target=trace, args=(proc.pid, output / "train_rss.csv", log, args.every), daemon=True)
        tracer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    if tracer is not None:
        tracer.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"training {name} failed with exit status {proc.returncode}: see {log}")
    if config is not None:
        (output / "TRAINED").write_text(json.dumps({"config": str(config)}) + "\n")
    result = {
        "name": name,
        "encoder": args.encoder,
        "overrides": extra,
        "peak_rss_mb": peak_mb(usage.ru_maxrss),
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    (output / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(results: List[Dict[str, Any]]) -> str:
    """One row per training; the peak also as a multiple of spancat's when spancat is among them."""
    spancat = next((r["peak_rss_mb"] for r in results if r["name"] == "spancat"), None)
    lines = ["| pipeline | encoder | peak RSS (MB) | × spancat | wall time | CPU time |", "|---|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['peak_rss_mb'] / spancat:.2f}" if spancat else "–"
        lines.append(f"| {r['name']} | {r['encoder']} | {r['peak_rss_mb']:,.0f} | {ratio} | "
                     f"{r['wall_s'] / 60:.0f} min | {r['cpu_s'] / 60:.0f} min |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train")
    parser.add_argument("--dev")
    parser.add_argument("--output-root", type=Path, default=Path("training"))
    parser.add_argument("--encoder", default="cpu")
    parser.add_argument("--pipelines", nargs="*", default=PIPELINES, choices=PIPELINES)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples (Linux)")
    parser.add_argument("--config", type=Path, help="train this config (spacy train) instead of --pipelines")
    parser.add_argument("--force", action="store_true", help="train again a run that already finished")
    parser.add_argument("--table", nargs="*", type=Path, help="print the table of earlier train_peak.json files")
    args = parser.parse_args(own)
    if args.table:
        print(table([json.loads(path.read_text()) for path in args.table]))
        return
    if not args.train or not args.dev:
        parser.error("--train and --dev are required")
    args.output_root = args.output_root.resolve()
    args.train, args.dev = str(Path(args.train).resolve()), str(Path(args.dev).resolve())
    results = []
    if args.config is not None:
        results.append(train_one(args.config.stem, args, extra, args.config.resolve()))
    for name in [] if args.config is not None else args.pipelines:
        results.append(train_one(name, args, extra))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
