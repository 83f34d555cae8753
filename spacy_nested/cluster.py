"""``annotate --engine dask``: the same pieces, annotated by the workers of a Dask cluster.

Dask (``pip install -e ".[dask]"``) rather than Ray: it is pure Python and installs from
the package registry wherever spaCy does, a local cluster starts in seconds, and its
futures API maps one-to-one onto our unit of work, an output piece, with no dataset
abstraction in between. The driver reads the input, sends each piece's texts (or DocBin
docs) to a worker as one task, and writes each piece atomically as its task completes
(``annotate.annotate_with``, the run of every engine), so resuming, order and the
records are exactly those of the single-machine run. Each worker process loads the
pipeline once (``_pipeline`` is cached per process) and runs ``nlp.pipe`` over its pieces.

With no scheduler address a ``LocalCluster`` of ``n_workers`` processes is started and
closed; with one (``--scheduler tcp://host:8786``), the run uses that cluster, whose
workers must have this package and the pipeline at the same path (or an installed
pipeline package name).
"""

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import spacy
from spacy.language import Language

from .annotate import Record, Submit, annotate_piece, annotate_with
from .formats.errors import Skipped


@lru_cache(maxsize=2)
def _pipeline(model: str) -> Language:
    return spacy.load(model)


def annotate_model_piece(model: str, records: List[Record], spans_key: str, batch_size: int) -> List[Dict[str, Any]]:
    """The output records of one piece (runs on a worker, which loads ``model`` once)."""
    return annotate_piece(_pipeline(model), records, spans_key, batch_size)


@contextmanager
def dask_engine(
    model: str, scheduler: Optional[str], n_workers: int, spans_key: str, batch_size: int
) -> Iterator[Tuple[Submit, int]]:
    """The cluster at ``scheduler``, or a local cluster of ``n_workers`` processes (closed after)."""
    from distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True)
    try:
        with Client(scheduler or cluster) as client:
            window = 2 * max(1, len(client.scheduler_info().get("workers", {})))  # pieces in flight

            def submit(records: List[Record]) -> Any:
                return client.submit(annotate_model_piece, model, records, spans_key, batch_size, pure=False)

            yield submit, window
    finally:
        if cluster is not None:
            cluster.close()


def annotate_on_dask(
    model: str,
    input_path: Path,
    output: Path,
    *,
    scheduler: Optional[str] = None,
    n_workers: int = 2,
    text_key: str = "text",
    spans_key: str = "nested",
    batch_size: int = 64,
    piece_size: int = 1000,
    resume: bool = False,
    skipped: Optional[Skipped] = None,
    progress: bool = False,
) -> int:
    """``annotate.annotate`` on a Dask cluster (module docstring); returns records written."""
    engine = dask_engine(model, scheduler, n_workers, spans_key, batch_size)
    reader = spacy.blank("en")  # only its vocab, for DocBin inputs; the workers load the pipeline
    return annotate_with(
        engine, reader, input_path, output, text_key=text_key, piece_size=piece_size, resume=resume,
        skipped=skipped, progress=progress,
    )  # fmt: skip
