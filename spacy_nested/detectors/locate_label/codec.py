"""Locate and Label targets and decoding (numpy; Shen et al. 2021 §2.2, §2.5, §2.6).

Encoding (one segment at a time): every seed is paired with the gold span of
maximum IoU (ties: the earlier gold span, as in the authors' code). Seeds with
IoU > α1 are positives (type and boundary offsets of their pair), the rest
negatives. Choices:

* Gold spans that are no seed (longer than the largest window) are added as
  positives with offset 0 (authors' code).
* **Long entities through regression**: a seed that shares its start or its
  end with a gold span longer than the largest window is also made a positive
  whose offsets reach that gold span, so the regressor learns to stretch seeds
  to entities no seed covers (the code leaves such seeds as negatives with no
  target and relies on luck).
* Negatives are downsampled to ``neg_ratio`` per positive (+2, as in the code),
  re-drawn at every update.
* Soft-example weights (eq. 11) are computed **per example**: ``IoU^η`` at or
  above the stage's threshold α, ``(1 - IoU)^η`` below it. The authors' code
  broadcasts an (n, 1) loss against an (n,) weight vector into an n×n matrix,
  which multiplies the summed loss by the mean weight and so never weights
  any example; ``soft_examples = false`` (``Sampling``) gives every example
  weight 1.
* Soft targets (``soft_targets``, for distillation): a target span may carry a
  score below 1 (a teacher's span in a distilled corpus). A seed paired with it
  is then a positive with probability s for the filter, its classifier target
  puts s on the span's label and 1 - s on None, and its regression counts s.
  Plain gold spans score 1, which gives the hard targets back.
* Classifier targets (relabelling with α2) are computed from the span the
  regressor produced: the paired gold type if IoU(adjusted, pair) ≥ α2, else
  None. Negatives are measured against their nearest gold span (the code uses
  the seed itself, giving every negative weight 1).

Decoding: label = argmax of the classifier, None dropped, score = that class's
probability (eq. 10). With ``none_veto`` off (not the paper) every span keeps
its most probable entity class and that class's probability even when None
is more probable, and only δ decides; the None class then ranks spans but
vetoes none. Duplicates of (start, end, label) keep their best score
(no voting boost, so scores stay in [0, 1]); then Soft-NMS (eq. 18, Algorithm
1) with IoU threshold k and decay u, keeping scores > δ. The code's removal of
crossing spans is an option (``remove_crossing``).
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy

from spacy_nested.detectors.locate_label.nms import iou, paired_iou, remove_crossing, soft_nms
from spacy_nested.detectors.locate_label.seeds import enumerate_seeds
from spacy_nested.spans import ScoredSpans, best_entity, dedupe_max


@dataclass
class LocateLabelTargets:
    """Candidates of one segment and their training targets (arrays of length K)."""

    spans: numpy.ndarray  # (K, 2) candidate spans
    positive: numpy.ndarray  # (K,) bool, IoU with pair > α1
    labels: numpy.ndarray  # (K,) label index + 1 of the pair for positives, 0 = None
    offsets: numpy.ndarray  # (K, 2) gold - candidate boundaries for positives, else 0
    pair_spans: numpy.ndarray  # (K, 2) the paired gold span; (0, 0) when the segment has none
    pair_labels: numpy.ndarray  # (K,) label index + 1 of the pair; 0 when none
    weights: numpy.ndarray  # (K,) eq. 11 with α1
    pair_scores: numpy.ndarray  # (K,) the pair's score with soft targets (1 for plain gold), else 1

    def __len__(self) -> int:
        return int(self.spans.shape[0])


def soft_weights(ious: numpy.ndarray, alpha: float, eta: float) -> numpy.ndarray:
    """Eq. 11: IoU^η when IoU ≥ α, (1 - IoU)^η otherwise."""
    ious = numpy.asarray(ious, dtype="float64")
    return numpy.where(ious >= alpha, ious**eta, (1.0 - ious) ** eta).astype("float32")


@dataclass(frozen=True)
class Sampling:
    """How training candidates are drawn and weighted (§2.2, §2.4, eq. 11).

    Registered as ``spacy_nested.locate_label_sampling.v1``, the component's
    ``sampling``: ``alpha1``/``alpha2`` the IoU thresholds α1 (positive seeds)
    and α2 (classifier relabelling); ``soft_examples`` weights examples by eq.
    11 with exponent ``eta`` (η), off weighs every example 1 (hard examples);
    ``neg_ratio`` negatives kept per positive seed (≤ 0: all);
    ``long_span_anchors`` lets seeds sharing a boundary with an over-long
    entity regress to it; ``seed`` seeds the negative sampling;
    ``soft_targets`` reads the target spans' scores as soft labels (above),
    off every target span counts whole.
    """

    alpha1: float
    alpha2: float
    soft_examples: bool
    eta: float
    neg_ratio: float
    long_span_anchors: bool
    seed: int
    soft_targets: bool = False

    def weights(self, ious: numpy.ndarray, alpha: float) -> numpy.ndarray:
        """Eq. 11 at threshold ``alpha`` with soft examples, else all 1."""
        if not self.soft_examples:
            return numpy.ones(numpy.shape(ious), dtype="float32")
        return soft_weights(ious, alpha, self.eta)


@dataclass(frozen=True)
class SoftNMSDecoder:
    """Decoding of one segment (eq. 10, eq. 18 and Algorithm 1).

    Registered as ``spacy_nested.soft_nms.v1``, the component's ``decoder``:
    ``soft_nms`` off keeps the spans scoring above the threshold δ (the
    component's ``threshold``) with no suppression; ``iou_threshold`` (k) and
    ``decay`` (u) are Soft-NMS's; ``drop_crossing`` removes both members of
    crossing pairs first (the authors' code); ``none_veto`` drops a span whose
    None probability beats every entity class (eq. 10, the paper), off keeps
    its best entity class for δ to judge.
    """

    soft_nms: bool
    iou_threshold: float
    decay: float
    drop_crossing: bool
    none_veto: bool

    def __call__(self, adjusted: numpy.ndarray, probs: numpy.ndarray, threshold: float) -> ScoredSpans:
        return decode(adjusted, probs, self, threshold)


def encode(
    gold: numpy.ndarray,
    length: int,
    widths: Sequence[int],
    sampling: Sampling,
    rng: Optional[numpy.random.Generator] = None,
    scores: Optional[numpy.ndarray] = None,
) -> LocateLabelTargets:
    """Candidates and targets for one segment. ``gold`` is (G, 3): start, end, label + 1; ``scores``
    (G,) each one's score, read with ``sampling.soft_targets`` (None: all 1)."""
    gold = numpy.asarray(gold, dtype="int64").reshape(-1, 3)
    if scores is None or not sampling.soft_targets:
        scores = numpy.ones(len(gold), dtype="float32")
    scores = numpy.asarray(scores, dtype="float32")
    seeds = enumerate_seeds(length, widths)
    extra = _missing_gold(seeds, gold)
    spans = numpy.concatenate([seeds, extra], axis=0)
    if len(gold) == 0:
        overlaps = numpy.zeros((len(spans), 0))
        pair = numpy.zeros(len(spans), dtype="int64")
        best = numpy.zeros(len(spans))
    else:
        overlaps = iou(spans, gold[:, :2])
        pair = overlaps.argmax(axis=1)
        best = overlaps[numpy.arange(len(spans)), pair]
    positive = best > sampling.alpha1
    if sampling.long_span_anchors and len(gold):
        pair, best, positive = _anchor_long_spans(spans, gold, max(widths), overlaps, pair, best, positive)
    targets = _make_targets(spans, gold, scores, pair, best, positive, sampling)
    return _subsample(targets, sampling.neg_ratio, rng)


def _missing_gold(seeds: numpy.ndarray, gold: numpy.ndarray) -> numpy.ndarray:
    seed_set = {(int(s), int(e)) for s, e in seeds}
    missing = sorted({(int(s), int(e)) for s, e, _ in gold} - seed_set)
    return numpy.asarray(missing, dtype="int64").reshape(-1, 2)


def _anchor_long_spans(spans, gold, max_width, overlaps, pair, best, positive):
    """Seeds sharing a boundary with a gold span longer than any seed reach it by regression."""
    pair, best, positive = pair.copy(), best.copy(), positive.copy()
    long_gold = [g for g in range(len(gold)) if gold[g, 1] - gold[g, 0] > max_width]
    for k in numpy.flatnonzero(~positive):
        s, e = spans[k]
        anchored = [g for g in long_gold if gold[g, 0] == s or gold[g, 1] == e]
        if anchored:
            g = max(anchored, key=lambda g: overlaps[k, g])
            pair[k], best[k], positive[k] = g, overlaps[k, g], True
    return pair, best, positive


def _make_targets(spans, gold, scores, pair, best, positive, sampling: Sampling) -> LocateLabelTargets:
    K = len(spans)
    if len(gold):
        pair_spans = gold[pair, :2]
        pair_labels = gold[pair, 2]
        pair_scores = numpy.where(best > 0, scores[pair], 1.0)
    else:
        pair_spans = numpy.zeros((K, 2), dtype="int64")
        pair_labels = numpy.zeros(K, dtype="int64")
        pair_scores = numpy.ones(K)
    # Eq. 11 by stage-1 outcome (anchored long-span positives may lie below α1).
    weights = numpy.where(positive, best, 1.0 - best) ** sampling.eta if sampling.soft_examples else numpy.ones(K)
    return LocateLabelTargets(
        spans=spans,
        positive=positive,
        labels=numpy.where(positive, pair_labels, 0),
        offsets=numpy.where(positive[:, None], pair_spans - spans, 0),
        pair_spans=pair_spans,
        pair_labels=numpy.where(best > 0, pair_labels, 0),
        weights=weights.astype("float32"),
        pair_scores=pair_scores.astype("float32"),
    )


def _subsample(t: LocateLabelTargets, neg_ratio: float, rng) -> LocateLabelTargets:
    negatives = numpy.flatnonzero(~t.positive)
    n_keep = int(min(len(negatives), neg_ratio * int(t.positive.sum()) + 2))
    if neg_ratio <= 0 or n_keep >= len(negatives):
        return t
    rng = rng if rng is not None else numpy.random.default_rng()
    chosen = rng.choice(negatives, size=n_keep, replace=False)
    keep = numpy.sort(numpy.concatenate([numpy.flatnonzero(t.positive), chosen]))
    return LocateLabelTargets(**{f: getattr(t, f)[keep] for f in t.__dataclass_fields__})


def classifier_targets(
    adjusted: numpy.ndarray, pair_spans: numpy.ndarray, pair_labels: numpy.ndarray, sampling: Sampling
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Relabel adjusted spans (§2.4): (labels, weights) for the classifier (eqs. 11, 16)."""
    if len(adjusted) == 0:
        return numpy.zeros(0, dtype="int64"), numpy.zeros(0, dtype="float32")
    ious = numpy.where(pair_labels > 0, paired_iou(adjusted, pair_spans), 0.0)
    labels = numpy.where(ious >= sampling.alpha2, pair_labels, 0)
    return labels.astype("int64"), sampling.weights(ious, sampling.alpha2)


def decode(adjusted: numpy.ndarray, probs: numpy.ndarray, settings: SoftNMSDecoder, threshold: float) -> ScoredSpans:
    """Entities of one segment from adjusted spans (K', 2) and class probabilities (K', M+1)."""
    if len(adjusted) == 0:
        return ScoredSpans.empty()
    labels, scores, none = best_entity(probs, none_column=0)
    keep = scores > none if settings.none_veto else numpy.ones(len(scores), dtype=bool)  # ties go to None
    spans = numpy.concatenate([adjusted[keep], labels[keep][:, None]], axis=1)
    found = dedupe_max(spans, scores[keep])
    if settings.drop_crossing:
        found = remove_crossing(found.spans, found.scores)
    if settings.soft_nms:
        k, u = settings.iou_threshold, settings.decay
        return soft_nms(found.spans, found.scores, iou_threshold=k, decay=u, threshold=threshold)
    above = found.scores > threshold
    return ScoredSpans(found.spans[above], found.scores[above])
