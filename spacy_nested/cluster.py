"""``annotate --engine dask``: the same pieces, annotated by the workers of a Dask cluster.

Dask (``pip install -e ".[dask]"``) rather than Ray: it is pure Python and installs from
the package registry wherever spaCy does, a local cluster starts in seconds, and its
futures API maps one-to-one onto our unit of work, an output piece, with no dataset
abstraction in between. The driver reads the input, sends each piece's texts (or DocBin
docs) to a worker as one task, and writes each piece atomically as its task completes
(``annotate.Pieces``), so resuming, order and the records are exactly those of the
single-machine run. Each worker process loads the pipeline once (``_pipeline`` is cached
per process) and runs ``nlp.pipe`` over its pieces.

With no scheduler address a ``LocalCluster`` of ``n_workers`` processes is started and
closed; with one (``--scheduler tcp://host:8786``), the run uses that cluster, whose
workers must have this package and the pipeline at the same path (or an installed
pipeline package name).
"""
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .annotate import Pieces, doc_record, group_pieces, open_pieces, pending_records, read_records
from .formats.errors import Skipped


@lru_cache(maxsize=2)
def _pipeline(model: str) -> Language:
    return spacy.load(model)


def annotate_piece(
    model: str, inputs: List[Union[str, Doc]], fields: List[Dict[str, Any]], spans_key: str, batch_size: int
) -> List[Dict[str, Any]]:
    """The output records of one piece (runs on a worker)."""
    nlp = _pipeline(model)
    return [doc_record(doc, f, spans_key) for doc, f in zip(nlp.pipe(inputs, batch_size=batch_size), fields)]


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
) -> int:
    """``annotate.annotate`` on a Dask cluster (module docstring); returns records written."""
    from distributed import Client, LocalCluster, as_completed

    started = open_pieces(output, resume)
    if started is None:
        return 0
    pieces, done = started
    reader = spacy.blank("en")  # only its vocab, for DocBin inputs; the workers load the pipeline
    todo = pending_records(read_records(input_path, text_key, reader, skipped), done * piece_size)
    cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True)
    written = 0
    with Client(scheduler or cluster) as client:
        window = 2 * max(1, len(client.scheduler_info().get("workers", {})))  # pieces in flight
        running, piece_of = as_completed(), {}
        for i, records in group_pieces(todo, lambda record: record.index, piece_size, done):
            inputs = [r.input for r in records]
            future = client.submit(annotate_piece, model, inputs, [r.fields for r in records], spans_key, batch_size, pure=False)
            piece_of[future.key] = i
            running.add(future)
            while running.count() >= window:
                written += _write(pieces, next(running), piece_of)
        for future in running:
            written += _write(pieces, future, piece_of)
    if cluster is not None:
        cluster.close()
    pieces.finish()
    return written


def _write(pieces: Pieces, future: Any, piece_of: Dict[str, int]) -> int:
    records = future.result()
    pieces.write(piece_of.pop(future.key), records)
    return len(records)
