"""The item's language from its text (pipeline/language.py): a pure function, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.language import Language, LanguagePolicy, detect_language
from pipeline.normalize import primary_subtag

POLICY = LanguagePolicy()
PERSIAN = "رئیس‌جمهور امروز در نشست هیئت دولت درباره بودجه سال آینده و وضعیت بازار ارز سخن گفت."
ARABIC = "أعلنت وزارة الصحة اليوم عن افتتاح مستشفى جديد في مدينة الرياض بسعة خمسمائة سرير."
ENGLISH = "The central bank raised interest rates on Tuesday, citing persistent inflation."
URDU = "وزیراعظم نے آج اسلام آباد میں کابینہ کے اجلاس کی صدارت کی اور مہنگائی پر بات کی۔"
SORANI = "ئەمڕۆ سەرۆکی حکومەتی هەرێمی کوردستان لەگەڵ شاندێکی بازرگانی کۆبووەوە و باسی وزەیان کرد."


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        (PERSIAN, "en", Language("fa", "en")),  # an agency's Persian page tagged English
        (ENGLISH, "fa-IR", Language("en", "fa")),  # its English edition tagged Persian
        (ARABIC, None, Language("ar", None)),  # no lang at all
        (URDU, "fa", Language("ur", "fa")),
        (SORANI, "ar", Language("ckb", "ar")),
    ],
)
def test_the_text_decides_over_the_declaration(
    text: str, declared: str | None, expected: Language
) -> None:
    found = detect_language("", text, declared, POLICY)
    assert (found.language, found.declared) == (expected.language, expected.declared)
    assert found.confidence is not None and found.confidence >= POLICY.min_confidence


def test_text_without_letters_keeps_the_declared_language() -> None:
    assert detect_language("", "۱۴۰۴/۰۹/۱۲ 12:30 — ***", "FA", POLICY) == Language("fa", "fa")
    assert detect_language("", "", None, POLICY) == Language(None, None)


def test_an_unsure_detection_keeps_the_declared_language() -> None:
    found = detect_language("", "ok xo", "fa", LanguagePolicy(min_confidence=0.99))
    assert found.language == "fa" and found.confidence is not None and found.confidence < 0.99


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("fa-IR", "fa"), ("EN_us", "en"), (" ckb ", "ckb"), ("", None), ("x", None), ("فا", None)],
)
def test_declared_tags_are_reduced_to_their_primary_subtag(tag: str, expected: str | None) -> None:
    assert primary_subtag(tag) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=3000), st.none() | st.text(max_size=20))
def test_any_text_gets_a_language_or_none_never_an_error(
    title: str, text: str, declared: str | None
) -> None:
    found = detect_language(title, text, declared, POLICY)
    for code in (found.language, found.declared):
        assert code is None or (code.isascii() and code.isalpha() and 2 <= len(code) <= 3)
