"""Words/s of several pipelines measured back to back, so that their ratios share one machine state.

    python bench/speed.py bench/out/boundary_offset/model-best bench/out/proposer_regressor/model-best \
        --init configs/genia_spancat_cpu.cfg

Each pipeline is measured with ``spacy benchmark speed --batch-size 128`` on the
bench dev corpus (written by ``bench/run.py``). ``--init CONFIG`` adds the
pipeline of CONFIG initialized on the bench train corpus but not trained: the
prediction cost of spancat's ngram suggester and scorer does not depend on the
weights (every 1-10-gram is scored), so an untrained spancat times like a
trained one, without a 25-minute training run. Its threshold is set above 1,
so that it writes no spans (an untrained spancat would write every scored
n-gram, ~100 per token, and look slower than it is): the timing leaves out the
cost of writing the few spans a trained spancat keeps, which favours the baseline. Not so for pipelines whose
work depends on what they predict (span_finder's candidates, the detectors'
filters): measure those trained.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from run import OUT, REPO, _run, speed


def initialized(config: Path) -> Path:
    """CONFIG initialized on the bench corpus and saved, not trained."""
    target = OUT / "initialized" / config.stem
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys\nfrom spacy.util import load_config\nfrom spacy.training.initialize import init_nlp\n"
            "cfg = load_config(sys.argv[1], overrides={'paths.train': sys.argv[2], 'paths.dev': sys.argv[3]})\n"
            "nlp = init_nlp(cfg)\n"
            "for _, pipe in nlp.pipeline:\n"
            "    if 'threshold' in getattr(pipe, 'cfg', {}): pipe.cfg['threshold'] = 1.1\n"
            "nlp.to_disk(sys.argv[4]); print('{}')"
        )
        corpus = OUT / "corpus"
        _run([sys.executable, "-c", code, str(config), str(corpus / "train.spacy"), str(corpus / "dev.spacy"), str(target)])
    return target


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--init", nargs="*", type=Path, default=[], help="configs to time initialized, untrained")
    args = parser.parse_args(argv)
    models = [initialized(REPO / config) for config in args.init] + list(args.models)
    results: Dict[str, float] = {str(model): speed(model, OUT / "corpus" / "dev.spacy") for model in models}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
