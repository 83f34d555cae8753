"""``nested_ensemble``: merge the scored spans of several nested detectors into one span group.

Placed after detectors that each write their own key, it reads each member's
``doc.spans[key]`` and its ``attrs["scores"]`` (one score per span, as every
detector of this package writes them) and writes the merged spans to
``doc.spans[spans_key]`` (default ``"nested"``) with their combined scores in
``attrs["scores"]``::

    nlp.add_pipe("nested_ensemble", config={"members": ["nested_ll", "nested_bo", "nested_pr"]})

Settings (the factory's ``default_config``; the merging itself is
``spacy_nested.ensemble.merge``, numpy only):

* ``members``: the span keys of the member detectors, at least two, each the
  ``spans_key`` of a pipe placed before this one.
* ``rule``: ``"average"``: combined score = ``sum_i w_i * s_i / sum_i w_i`` over
  all members, where a span a member did not predict counts as ``s_i = 0``; the
  spans scoring ``>= threshold`` are kept. ``"vote"``: a span is kept when at
  least ``min_votes`` members predict it (one unweighted vote each; the threshold
  is not used); its score is the same weighted average.
* ``weights``: one per member (null: all 1.0), ``>= 0``, not all zero;
  ``threshold`` (0.5) in [0, 1]; ``min_votes`` (2), from 1 to the number of members.

Spans agree only when start, end and label are all equal; ties with the
threshold are kept; the output is sorted by start, end, then label (labels in
string order). Like the detectors' and spancat's threshold, ``threshold`` lives
in ``cfg`` and is read at every call, so ``spacy find-threshold MODEL DATA
nested_ensemble threshold spans_nested_f`` tunes it; what the config says wins
over the saved ``cfg`` when a pipeline is loaded, so a load-time override
(``spacy.load(path, config={"components": {"nested_ensemble": {"threshold": 0.6}}})``)
takes effect, and a changed ``cfg`` is saved only with the config changed too
(as ``python -m spacy_nested tune-ensemble`` does). ``nlp.evaluate`` reports
``spans_<spans_key>_p/r/f`` (``spacy_nested.nested_scorer.v1``).

Errors (ValueError, naming the problem): fewer than two members, a repeated
member, a member equal to ``spans_key``, bad weights, rule, threshold or
min_votes (``check_config``, at construction and at ``initialize``); at
``initialize`` (or ``check_members(nlp)``), a member key that no earlier pipe
writes and members whose label sets differ (compared through the writing pipes'
``labels``); at call time, a doc without a member's key or its scores.

Two ways to get the members
---------------------------
(a) **One encoder, three heads**: a ``tok2vec`` (or ``transformer``) and the
three detectors listening to it in one pipeline, each with its own
``spans_key``, then the ensemble. The encoder runs once per doc, so prediction
costs about one encoder plus three heads, and the encoder is trained by all
three heads' losses together. Training in one pipeline needs the gold spans
under every member key of the reference docs (each detector reads its gold from
its own ``spans_key``): the training corpus's augmenter
``spacy_nested.copy_spans.v1`` (``spacy_nested.corpora.augmenters``) copies them there::

    nlp.add_pipe("tok2vec")  # width 96, as the detectors' default inline tok2vec
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "tok2vec"}
    for factory, key in (("locate_label_ner", "nested_ll"), ("boundary_offset_ner", "nested_bo"),
                         ("proposer_regressor_ner", "nested_pr")):
        nlp.add_pipe(factory, config={"spans_key": key, "model": {"tok2vec": listener}})
    nlp.add_pipe("nested_ensemble", config={"members": ["nested_ll", "nested_bo", "nested_pr"]})

``python -m spacy_nested shared-encoder-config OUT.cfg nested_ll=LL.cfg nested_bo=BO.cfg``
writes the training config of this setup from the members' own configs
(``spacy_nested.ensemble.build``).

(b) **Separately trained pipelines**, each with its own encoder (as ``spacy
project run`` trains them), combined with ``source``. A sourced detector that
listens to its pipeline's ``tok2vec`` must first own a copy of that encoder
(``replace_listeners``): otherwise it either finds no encoder or silently
listens to the wrong pipeline's one. Each detector also needs its own key, set
by a load-time override. Prediction then runs three encoders (about three
times the cost of one pipeline); each member keeps exactly the accuracy it was
trained to::

    nlp = spacy.load(LL, config={"components": {"locate_label_ner": {"spans_key": "nested_ll"}}})
    for path, name, key in ((BO, "boundary_offset_ner", "nested_bo"), (PR, "proposer_regressor_ner", "nested_pr")):
        other = spacy.load(path, config={"components": {name: {"spans_key": key}}})
        other.replace_listeners("tok2vec", name, ["model.tok2vec"])
        nlp.add_pipe(name, source=other)
    nlp.add_pipe("nested_ensemble", config={"members": ["nested_ll", "nested_bo", "nested_pr"]})
    nlp.get_pipe("nested_ensemble").check_members(nlp)  # keys and labels, without re-initializing the members
    nlp.to_disk("training/ensemble")

(``LL`` keeps its own ``tok2vec`` as the base pipeline's; the members must share
its tokenization, as pipelines trained on one corpus do.) ``python -m spacy_nested
combine-pipelines OUT KEY=MODEL KEY=MODEL ...`` does this for any trained
detector pipelines, the same detector several times too (``spacy_nested.ensemble.build``).
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.vocab import Vocab

from spacy_nested import registrations  # noqa: F401  (the registered scorer the default config names)
from spacy_nested.ensemble.merge import MemberSpans, check_config, merge

DEFAULT_CONFIG: Dict[str, Any] = {
    "members": [],
    "spans_key": "nested",
    "rule": "average",
    "weights": None,
    "threshold": 0.5,
    "min_votes": 2,
    "scorer": {"@scorers": "spacy_nested.nested_scorer.v1"},
}


@Language.factory(
    "nested_ensemble",
    assigns=["doc.spans"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"spans_nested_f": 1.0, "spans_nested_p": 0.0, "spans_nested_r": 0.0},
)
def make_nested_ensemble(
    nlp: Language,
    name: str,
    members: List[str],
    spans_key: str,
    rule: str,
    weights: Optional[List[float]],
    threshold: float,
    min_votes: int,
    scorer: Optional[Callable],
) -> "NestedEnsemble":
    """Merge the scored spans of the detectors writing the keys `members` (see the module docstring)."""
    return NestedEnsemble(
        nlp.vocab,
        name,
        members=members,
        spans_key=spans_key,
        rule=rule,
        weights=weights,
        threshold=threshold,
        min_votes=min_votes,
        scorer=scorer,
    )


class NestedEnsemble(Pipe):
    """The ``nested_ensemble`` component (not trainable; see the module docstring)."""

    def __init__(
        self,
        vocab: Vocab,
        name: str = "nested_ensemble",
        *,
        members: Sequence[str],
        spans_key: str = "nested",
        rule: str = "average",
        weights: Optional[Sequence[float]] = None,
        threshold: float = 0.5,
        min_votes: int = 2,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.scorer = scorer
        self._configured: Dict[str, Any] = {
            "members": list(members),
            "spans_key": spans_key,
            "rule": rule,
            "weights": None if weights is None else [float(w) for w in weights],
            "threshold": float(threshold),
            "min_votes": int(min_votes),
        }
        self.cfg: Dict[str, Any] = {**self._configured, "labels": []}
        self.check_config()

    # --- settings ------------------------------------------------------------
    def check_config(self) -> numpy.ndarray:
        """Check the settings in ``cfg`` (the one check, shared with the constructor); return the weights."""
        cfg = self.cfg
        members = list(cfg["members"])
        if cfg["spans_key"] in members:
            raise ValueError(
                f"[{self.name}] spans_key '{cfg['spans_key']}' is also a member: the ensemble would overwrite "
                f"the spans it reads; give it another key"
            )
        return check_config(members, cfg["weights"], cfg["rule"], cfg["threshold"], cfg["min_votes"])

    @property
    def members(self) -> List[str]:
        return list(self.cfg["members"])

    @property
    def key(self) -> str:
        return str(self.cfg["spans_key"])

    @property
    def threshold(self) -> float:
        return float(self.cfg["threshold"])

    @property
    def labels(self) -> Tuple[str, ...]:
        """The members' common label set, recorded by ``initialize`` / ``check_members`` (empty before)."""
        return tuple(self.cfg.get("labels", []))

    # --- members in the pipeline ---------------------------------------------
    def check_members(self, nlp: Language) -> Dict[str, str]:
        """Check that each member key is written by a pipe before this one and that their labels agree.

        Returns ``{member key: name of the pipe that writes it}`` and records the labels in ``cfg``.
        """
        names = list(nlp.pipe_names)
        earlier = names[: names.index(self.name)] if self.name in names else names
        writes = {n: _written_key(nlp.get_pipe(n)) for n in earlier}
        writers: Dict[str, str] = {}
        for member in self.members:
            found = [n for n in earlier if writes[n] == member]
            if not found:
                known = {n: k for n, k in writes.items() if k is not None}
                raise ValueError(
                    f"[{self.name}] member '{member}': no pipe before {self.name} writes doc.spans['{member}'] "
                    f"(the earlier pipes write {known or 'no span keys'}); the members must be the spans_key of "
                    f"detectors placed before nested_ensemble"
                )
            writers[member] = found[-1]  # the last writer's spans are the ones the ensemble reads
        label_sets = {m: set(getattr(nlp.get_pipe(p), "labels", ()) or ()) for m, p in writers.items()}
        known_sets = {m: s for m, s in label_sets.items() if s}
        if known_sets:
            common = set.intersection(*known_sets.values())
            extra = {m: sorted(s - common) for m, s in known_sets.items() if s - common}
            if extra:
                parts = "; ".join(f"member '{m}' (pipe '{writers[m]}') has extra labels {e}" for m, e in extra.items())
                raise ValueError(
                    f"[{self.name}] the members' label sets differ: {parts}; the labels all members share are "
                    f"{sorted(common)}. Spans are merged by label, so every member must predict the same types."
                )
            self.cfg["labels"] = sorted(common)
        return writers

    def initialize(
        self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *, nlp: Optional[Language] = None
    ) -> None:
        """Check the settings and, given ``nlp``, the members (keys written by earlier pipes, equal labels)."""
        self.check_config()
        if nlp is not None:
            self.check_members(nlp)

    # --- prediction ------------------------------------------------------------
    def member_spans(self, doc: Doc) -> Tuple[List[str], List[MemberSpans]]:
        """The doc's labels (sorted strings) and each member's ``(start, end, label index)`` rows and scores."""
        groups = []
        for member in self.members:
            if member not in doc.spans:
                raise ValueError(
                    f"[{self.name}] member '{member}': doc.spans has no such key; the members must be the "
                    f"spans_key of detectors placed before nested_ensemble (the doc has {sorted(doc.spans.keys())})"
                )
            group = doc.spans[member]
            scores = group.attrs.get("scores")
            if scores is None or len(scores) != len(group):
                raise ValueError(
                    f"[{self.name}] member '{member}': doc.spans['{member}'].attrs['scores'] must hold one score per "
                    f"span ({len(group)} spans, scores: {None if scores is None else len(scores)})"
                )
            groups.append((group, scores))
        labels = sorted({span.label_ for group, _ in groups for span in group})
        index = {label: i for i, label in enumerate(labels)}
        arrays: List[MemberSpans] = []
        for group, scores in groups:
            rows = [(span.start, span.end, index[span.label_]) for span in group]
            arrays.append((numpy.asarray(rows, dtype="int64").reshape(-1, 3), numpy.asarray(scores, dtype="float64")))
        return labels, arrays

    def __call__(self, doc: Doc) -> Doc:
        self._annotate(doc, self.check_config())
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        weights = self.check_config()
        error_handler = self.get_error_handler()
        for doc in stream:
            try:
                self._annotate(doc, weights)
                yield doc
            except Exception as e:
                error_handler(self.name, self, [doc], e)

    def _annotate(self, doc: Doc, weights: numpy.ndarray) -> None:
        labels, arrays = self.member_spans(doc)
        cfg = self.cfg
        triples, scores = merge(
            arrays, weights, rule=cfg["rule"], threshold=cfg["threshold"], min_votes=cfg["min_votes"], names=self.members
        )
        spans = [Span(doc, int(s), int(e), label=labels[int(label)]) for s, e, label in triples]
        group = SpanGroup(doc, name=self.key, spans=spans)
        group.attrs["scores"] = [float(x) for x in scores]
        doc.spans[self.key] = group

    # --- serialization (the settings only) ----------------------------------
    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"cfg": self.cfg})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "NestedEnsemble":
        self._load_cfg(srsly.msgpack_loads(bytes_data)["cfg"])
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "NestedEnsemble":
        self._load_cfg(srsly.read_json(Path(path) / "cfg"))
        return self

    def _load_cfg(self, saved: Dict[str, Any]) -> None:
        # What the config sets wins over the saved cfg (a load-time override, find-threshold); the saved
        # cfg brings what only it holds (the members' labels).
        self.cfg = {**saved, **self._configured}
        self.check_config()


def _written_key(pipe: Any) -> Optional[str]:
    """The span key a pipe writes: ``cfg["spans_key"]`` (this package's detectors, spancat), else its ``key``."""
    cfg = getattr(pipe, "cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("spans_key"), str):
        return str(cfg["spans_key"])
    key = getattr(pipe, "key", None)
    return key if isinstance(key, str) else None
