"""Distillation: train any detector config (the student) on a trained pipeline's predictions (the teacher).

``python -m spacy_nested distill TEACHER STUDENT_CONFIG OUTPUT --train TRAIN.spacy --dev DEV.spacy``
(``spacy_nested/cli/distill.py``). The parts, each one idea:

* ``teacher``: loading a teacher (any pipeline that writes a span group: a detector, an ensemble,
  spaCy's spancat), labelling docs with it in bounded batches, and the rule that merges its spans
  with the gold spans of a training doc (`merge_with_gold`);
* ``corpus``: the distilled corpus, ``OUTPUT/corpus/`` (``train_distilled.spacy``, ``unlabeled.spacy``
  and ``distill.json``, the record of how it was made), written all or nothing, reused when a run
  with the same teacher, inputs and settings wrote it, and the overrides that point ``spacy train``
  at it.

Targets: the student's spans key holds the gold spans (score 1.0) plus the teacher's spans at or above
the threshold with the teacher's scores, which each detector's ``soft_targets`` switch turns into
soft targets (hard by default); a second key, ``teacher``, holds every span the teacher predicted with
its score (``docs/distill.md``).

``teacher`` imports nothing of ``corpus``; the command imports both.
"""
from spacy_nested.distillation.corpus import DISTILL_FILE, DistillSettings, write_corpus
from spacy_nested.distillation.teacher import TEACHER_KEY, Teacher, TeacherError, load_teacher, merge_with_gold

__all__ = [
    "DISTILL_FILE",
    "TEACHER_KEY",
    "DistillSettings",
    "Teacher",
    "TeacherError",
    "load_teacher",
    "merge_with_gold",
    "write_corpus",
]
