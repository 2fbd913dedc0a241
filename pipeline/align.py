"""Slot check: does a candidate the sketches call a copy differ from it in a template's slots?

MinHash sketches measure *how much* two texts share. Template stories (a cable from one head
of state to different presidents, a ministry bulletin for another day, a weather report for
other regions) share 60-85 % of their text and pass as copies. What tells them apart is *what*
differs: a copy adds or drops contiguous material (a byline, a dateline, an attribution, a
trimmed ending, a boilerplate tail) and rewrites function words, honorifics and relative days,
while a template changes a few words *between identical words*: a country, a person, a place,
a weekday, a figure. No NER is needed for that: a span substituted between identical context,
whose words the other text does not have at all, is a slot.

The check runs only on a pair the sketches already call duplicates, and can only turn that
verdict into "distinct". It compares two small per-item records (``AlignRecord``, at most
``4 + 3 * 40 + 4 * 12 + 2 * 12 + 2 * 4 = 204`` bytes at the default policy):

- the first ``lead_tokens`` tokens of the normalized text, each a 16-bit word (a 14-bit hash
  of the token's folded, light-stemmed form, and 2 bits of kind: content, function word, digits,
  number word), plus one byte per token: 8 bits of the hash of the token joined with the next
  one, so that "کم سابقه" and "کمسابقه" (a ZWNJ written as a space or as nothing), or "عبد
  العزیز" and "عبدالعزیز", are one spelling;
- the first ``title_tokens`` tokens of the title, words as in the lead: what the headline names;
- the text's **number marks**: each number written in digits anywhere in the text, with the two
  words before and the two after it (24-bit hash of that context, 8-bit hash of the value).
  Two texts that have the same four words around different figures are two events ("winds at
  15-35 km/h" vs "10-30 km/h" in two days' weather reports), however alike the rest;
- the text's **event dates**: each full date it names past its dateline (day, month and year,
  in digits or with a Gregorian, Hijri or Persian month's name), a 16-bit hash of (year, month,
  day). A statement about a convict executed on 14 Shawwal and one about another executed on
  the 15th share everything but a name and the day, both far past the lead.

The rule, for a port (``differs_in_slots``; all integers, words compared for equality only):

0. Event dates: both records have some and none is in both: distinct.
1. Number marks: group each record's marks by context (``mark >> 8``); a context in both whose
   value sets (``mark & 0xFF``) have nothing in common is a differing figure: distinct.
2. Align the two lead word arrays (``align``): common prefix and suffix matched as they are,
   then for the middle an LCS table filled from the end and the walk from the start. Hunks are
   the unmatched stretches between runs of consecutive matches, each with the lengths of the
   runs right before and right after it (0 at either end of the window).
3. A hunk with words on both sides is a substitution. In it, drop join variants: a pair of
   adjacent words on one side whose join byte equals the low 8 bits of a word's hash (``word >>
   2 & 0xFF``) on the other side is one spelling; remove the three words, repeat. If both sides
   still have words, classify: (a) digits, or number words: as many of that kind on each side,
   no word in common: a typed slot; (b) a weekday on each side (``WEEKDAY_WORDS``), none in
   common: a typed slot; (c) a content word on each side that the other record (lead and title)
   does not have: a content slot, and a *headline* slot when those words of each side are also
   in its own title.
4. A slot counts only with ``context`` (2) matched words right before and right after it, and
   at most ``max_span`` (4) words on each side.
5. Distinct if a typed slot counts, or ``headline_slots`` (1) headline slots, or ``min_slots``
   (2) content slots; else the sketches' verdict stands.

The Python side (``align_record``) does all the language work once per item (normalizing,
stemming, hashing, finding numbers): a Redis script only reads the candidate's stored record
and the new item's record (an argument). Any change to the word lists, the stemming or the
hashes changes the words: it must change the index scheme, like the normalizer's version.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from pipeline.normalize import normalize_for_matching, number_value

# --- Token kinds (the low 2 bits of a token word) ----------------------------------------------
CONTENT = 0  # everything else: names, places, nouns, verbs
FUNCTION = 1  # particles, pronouns, attribution verbs, honorifics, relative days: copies rewrite
DIGITS = 2  # a number written in digits; the hash is of its value
NUMBER_WORD = 3  # a number written as a word (one to ten, tens, hundreds); the hash is of its value

HASH_BITS = 14  # of a token word; the other 2 bits are its kind
JOIN_BITS = 8  # of the hash of a token joined with the next one
CONTEXT_BITS = 24  # of a number mark's context hash
VALUE_BITS = 8  # of a number mark's value hash
DATE_BITS = 16  # of an event date's hash
# The record's version: any change to the word lists, the stemming, the hashes or the layout
# bumps it, and with it the dedupe index's scheme (pipeline/dedupe.py SCHEME).
ALIGN_VERSION = 1
_PERSON = b"feedpipe-align%d" % ALIGN_VERSION  # keys every hash


@dataclass(frozen=True)
class SlotPolicy:
    """The check's parameters (chosen in bench/template_study.py; see its report).

    ``lead_tokens``, ``numbers_max``, ``title_tokens`` and ``dates_max`` fix the stored
    record's size (``record_bytes_max``)."""

    lead_tokens: int = 40  # tokens of the normalized text aligned (from its start)
    title_tokens: int = 12  # tokens of the normalized title kept (90 % of titles are shorter)
    numbers_max: int = 12  # number marks kept per item (the text's first ones)
    context: int = 2  # identical tokens needed on each side of a substitution to call it a slot
    max_span: int = 4  # tokens on each side of a substitution, at most, for a slot
    min_slots: int = 2  # content slots that make two texts distinct (a typed slot: one)
    headline_slots: int = 1  # headline slots that do (0: never); see Slot.headline
    number_context: int = 2  # words on each side of a number mark
    dates_max: int = 4  # event dates kept per item (the text's first ones)
    dateline_tokens: int = 12  # leading tokens whose dates are the outlet's dateline, not kept

    @property
    def record_bytes_max(self) -> int:
        """The largest ``AlignRecord.to_bytes()`` under this policy."""
        counts = 4  # one byte each: lead words, number marks, title words, dates
        lead = 3 * self.lead_tokens  # a 2-byte word and a join byte per token
        return counts + lead + 4 * self.numbers_max + 2 * self.title_tokens + 2 * self.dates_max


@dataclass(frozen=True)
class AlignRecord:
    """What the check keeps per item (``to_bytes``: the layout a Redis script reads)."""

    words: tuple[int, ...]  # lead tokens: hash << 2 | kind (16 bits each)
    joins: tuple[int, ...]  # per token: 8 bits of the hash of it joined with the next (0 last)
    numbers: tuple[int, ...] = ()  # number marks: context hash << 8 | value hash (32 bits each)
    title: tuple[int, ...] = ()  # the title's first tokens, words as in the lead (16 bits each)
    dates: tuple[int, ...] = ()  # event dates: hashes of (year, month, day) (16 bits each)
    tokens: tuple[str, ...] = field(default=(), compare=False)  # diagnostics only, not stored

    def to_bytes(self) -> bytes:
        """``n, n words (2 B each, big-endian), n joins (1 B each), m, m marks (4 B each),
        t, t title words (2 B each), d, d dates (2 B each)``. A record written before dates
        were kept ends after the title: it has none."""
        return (
            bytes([len(self.words)])
            + b"".join(w.to_bytes(2, "big") for w in self.words)
            + bytes(self.joins)
            + bytes([len(self.numbers)])
            + b"".join(m.to_bytes(4, "big") for m in self.numbers)
            + bytes([len(self.title)])
            + b"".join(w.to_bytes(2, "big") for w in self.title)
            + bytes([len(self.dates)])
            + b"".join(d.to_bytes(2, "big") for d in self.dates)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AlignRecord:
        n = data[0]
        words = struct.unpack(f">{n}H", data[1 : 1 + 2 * n])
        joins = tuple(data[1 + 2 * n : 1 + 3 * n])
        at = 1 + 3 * n
        m = data[at]
        numbers = struct.unpack(f">{m}I", data[at + 1 : at + 1 + 4 * m])
        at += 1 + 4 * m
        t = data[at]
        title = struct.unpack(f">{t}H", data[at + 1 : at + 1 + 2 * t])
        at += 1 + 2 * t
        d = data[at] if at < len(data) else 0
        dates = struct.unpack(f">{d}H", data[at + 1 : at + 1 + 2 * d])
        return cls(
            words=tuple(words),
            joins=joins,
            numbers=tuple(numbers),
            title=tuple(title),
            dates=tuple(dates),
        )


SlotKind = Literal["content", "digits", "number_word", "weekday"]


@dataclass(frozen=True)
class Slot:
    """A substitution between identical context: positions in the two lead windows, and the
    identical tokens right before and right after it (the smaller count).

    ``headline``: a content slot each side of which has a word the other text lacks that its own
    title also has ("مصر" in the lead and the title of one cable, "التونسیه" in the other's):
    the two headlines name what was swapped, so the story's subject differs. A copy's synonym
    ("نصب" / "اقیم") is not in its title; a copy's new headline uses the story's own words,
    which the other text has."""

    kind: SlotKind
    a_start: int
    a_end: int
    b_start: int
    b_end: int
    context: int = 0
    headline: bool = False


@dataclass(frozen=True)
class SlotVerdict:
    distinct: bool
    reason: str  # "" (no evidence), "dates" (the events' dates differ), "numbers" (a number mark
    # differs), "digits", "number_word",
    # "weekday" (a typed slot), "headline" (headline_slots headline slots), "slots" (min_slots
    # content slots)
    slots: tuple[Slot, ...] = ()
    numbers_differ: int = 0  # number-mark contexts holding different values


@dataclass(frozen=True)
class Hunk:
    """What lies between two runs of matched tokens: a[a_start:a_end] vs b[b_start:b_end],
    with the lengths of the matched runs right before and right after it."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int
    before: int
    after: int


# --- Language knowledge: what copies rewrite --------------------------------------------------
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# As normalize_for_matching spells them (ی ه ا for ي/ى ة أ/إ/آ). Copies rewrite these freely: the
# connective ("حیث" / "وقد"), the reporting verb ("اوضح" / "قال"), the honorific ("لفخامته" /
# "للرییس"), the relative day ("الیوم" / "امس", republished the next day), the Persian
# attribution ("به گزارش"). A substitution made only of them is never a slot.
_FUNCTION_WORDS = _words(
    """
    فی من الی علی عن مع ب ل ک و ف او ام ثم حتی منذ خلال عند لدی بین حول نحو ضد عبر دون بدون
    لدی سوی غیر قبل بعد اثناء ازاء تجاه لان کان کانت یکون تکون ان انه انها انهم لکن لکنه بل قد لقد
    لم لن لا ما مما کما حیث بینما فیما اذا اذ هذا هذه ذلک تلک هولاء هو هی هم هما نحن التی الذی الذین
    اللذین اللتین اللاتی الی کل جمیع کافه بعض مختلف عده ای ایضا کذلک بان بانه بانها علیه علیها
    له لها لهم به بها بهم منه منها عنه عنها فیه فیها الیه الیها الیهم لدیه لدیها وقد وهو وهی
    قال قالت اوضح اوضحت اکد اکدت اشار اشارت اضاف اضافت بین بینت ذکر ذکرت اعلن اعلنت افاد افادت
    صرح صرحت اعرب اعربت لفت لفتت شدد شددت نوه نوهت تابع تابعت مبینا موضحا موکدا مشیرا مضیفا
    مشددا لافتا منوها معربا معلنا یقول تقول یضیف تضیف اعتبر اعتبرت بحسب حسب وفقا وفق نقلا طبقا
    سمو سموه السمو صاحب الملکی معالی معالیه فخامه فخامته جلاله جلالته سعاده سعادته الشیخ الشیخه
    الدکتور د المهندس الاستاذ الاستاذه السید السیده المفدی حفظه ایده رعاه الله تعالی
    الیوم امس غدا البارحه الان حالیا اخیرا موخرا المقبل القادم الماضی الجاری الحالی المنصرم یوم
    غد صباح مساء ظهر ظهرا عصر صباحا لیله اللیله الماضیه المقبله القادمه الجاریه الحالیه
    و در به از که را با این ان برای تا بر هم نیز یا اما اگر چون چه همین همان وی او ایشان انها
    گفت گفته افزود اظهار داشت کرد کرده کردند اعلام تاکید گزارش نوشت است بود شد شده
    امروز دیروز فردا امسال پارسال اکنون هماکنون اخیر روز
    """
)
# A weekday substituted for another is a typed slot (a bulletin for another day); a relative day
# ("yesterday" for "today") is not: a copy republished the next day rewrites it.
_WEEKDAYS = _words(
    "السبت الاحد الاثنین الثلاثاء الاربعاء الخمیس الجمعه شنبه یکشنبه دوشنبه چهارشنبه پنجشنبه"
)
# Clitics in front of a listed word: "وقال", "لفخامته", "بالامس".
_CLITICS = ("", "و", "ف", "ب", "ل", "ک", "ال", "وال", "بال", "فال", "کال", "لل")
# Number words beyond normalize.number_value's one to ten: copies write "50" for "خمسین".
_BIG_NUMBER_WORDS = {
    "احد": 1,
    "احدی": 1,
    "حادی": 1,
    "حادیه": 1,
    "عشرون": 20,
    "عشرین": 20,
    "ثلاثون": 30,
    "ثلاثین": 30,
    "اربعون": 40,
    "اربعین": 40,
    "خمسون": 50,
    "خمسین": 50,
    "ستون": 60,
    "ستین": 60,
    "سبعون": 70,
    "سبعین": 70,
    "ثمانون": 80,
    "ثمانین": 80,
    "تسعون": 90,
    "تسعین": 90,
    "مایه": 100,
    "میه": 100,
    "مایتین": 200,
}
# A skeleton first: long vowels and hamza seats dropped ("الامریکی" / "الامیرکی", "معتدل" /
# "معتدلا"; that also drops the conjunction و), letters transliterations confuse folded
# ("فنربغشه" / "فنربخشه", "الانجلیزی" / "الانکلیزی"), doubled letters collapsed (a typo's
# "وررد", "ببرقیه"). Then light stemming on the skeleton, where copies vary: "بمدارس" / "مدارس",
# "البحرین" / "البحرینی", "المشاریع" / "المشروعات". Prefixes (the article's ل, the prepositions
# ب and ف), then suffixes (ة/ها, هم/هما, the ن of ین/ان/ون, the ت of ات), each while 3 letters
# remain: a word that starts or ends with one of these letters loses it on both sides alike
# ("بلغ" stays, "لبلغ" gives "بلغ"). Not the verb prefix ت: it would cut "تونس" to "نس".
_FOLD = str.maketrans(
    {
        **dict.fromkeys("اویء"),
        **dict.fromkeys("جغقگکخ", "ک"),
        "پ": "ب",
        "ژ": "ز",
        "ذ": "ز",
        "ظ": "ز",
        "ض": "ز",
        "ث": "س",
        "ص": "س",
        "ط": "ت",
    }
)
_SUFFIXES = ("هم", "ه", "ن", "ت")
_PREFIXES = ("ل", "ب", "ف")
_DOUBLED = re.compile(r"(.)\1+")
_DIGITS = re.compile(r"^(\d+)[مه]?$")  # "2014م", "1436ه": Gregorian and Hijri years
_DECIMAL = re.compile(r"^(\d+)ر(\d+)$")  # "15ر8": SPA writes decimals with ر


def _hash(text: str, bits: int) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=4, person=_PERSON).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def _listed(token: str, words: frozenset[str]) -> bool:
    return any(token.startswith(c) and token[len(c) :] in words for c in _CLITICS)


def stem(token: str) -> str:
    """The form tokens are compared in: a folded skeleton, then light-stemmed."""
    t = _DOUBLED.sub(r"\1", token.translate(_FOLD))
    while True:
        for prefix in _PREFIXES:
            if t.startswith(prefix) and len(t) - len(prefix) >= 3:
                t = t[len(prefix) :]
                break
        else:
            break
    while True:
        for suffix in _SUFFIXES:
            if t.endswith(suffix) and len(t) - len(suffix) >= 3:
                t = t[: -len(suffix)]
                break
        else:
            break
    return t or token


def _word(form: str, kind: int) -> int:
    return _hash(form, HASH_BITS) << 2 | kind


def _value(token: str) -> int | None:
    if (value := _digit_value(token)) is not None:
        return value
    if (value := number_value(token)) is not None:
        return value
    for clitic in _CLITICS:
        if token.startswith(clitic) and (v := _BIG_NUMBER_WORDS.get(token[len(clitic) :])):
            return v
    return None


@functools.lru_cache(maxsize=1 << 16)
def token_words(token: str) -> tuple[tuple[int, str], ...]:
    """The words of one normalized token (two for "15ر8"), each with the form it stands for."""
    if match := _DECIMAL.match(token):
        return tuple((_word(f"#{int(v)}", DIGITS), v) for v in match.groups())
    if _listed(token, _WEEKDAYS):
        return ((_word(stem(token), CONTENT), token),)
    value = _value(token)
    if value is not None:
        kind = DIGITS if token[0].isdigit() else NUMBER_WORD
        return ((_word(f"#{value}", kind), token),)
    kind = FUNCTION if _listed(token, _FUNCTION_WORDS) else CONTENT
    return ((_word(stem(token), kind), token),)


WEEKDAY_WORDS = frozenset(_word(stem(day), CONTENT) for day in _WEEKDAYS)


@functools.lru_cache(maxsize=1 << 16)  # common phrases recur across items
def _join_key(first: str, second: str) -> int:
    """8 bits of the hash of two tokens written as one, to compare with a single token's word."""
    return (_word(stem(first + second), CONTENT) >> 2) & ((1 << JOIN_BITS) - 1)


def _single_key(word: int) -> int:
    return (word >> 2) & ((1 << JOIN_BITS) - 1)


def _words_of(tokens: Iterable[str], limit: int) -> tuple[list[int], list[str]]:
    """The first ``limit`` words of normalized tokens, with their forms."""
    words: list[int] = []
    forms: list[str] = []
    for token in tokens:
        if len(words) >= limit:
            break
        for word, form in token_words(token):
            words.append(word)
            forms.append(form)
    return words[:limit], forms[:limit]


def align_record(
    text: str,
    title: str = "",
    policy: SlotPolicy | None = None,
    *,
    normalized: str | None = None,
) -> AlignRecord:
    """The record of an item: its text (the article body, as given to ``dedupe.fingerprint``)
    and its title. ``normalized``: ``normalize_for_matching(text)`` when the caller has it."""
    policy = policy or SlotPolicy()
    raw = (normalize_for_matching(text) if normalized is None else normalized).split()
    words, forms = _words_of(raw, policy.lead_tokens)
    joins = [_join_key(a, b) for a, b in itertools.pairwise(forms)]
    return AlignRecord(
        words=tuple(words),
        joins=(*joins, 0) if words else (),
        numbers=number_marks(raw, policy),
        title=tuple(_words_of(normalize_for_matching(title).split(), policy.title_tokens)[0]),
        dates=event_dates(raw, policy),
        tokens=tuple(forms),
    )


def _is_digits(token: str) -> bool:
    return token[:1].isdigit() and token_words(token)[0][0] & 3 == DIGITS


def number_marks(tokens: Sequence[str], policy: SlotPolicy) -> tuple[int, ...]:
    """Each run of numbers in digits (normalized tokens) with ``number_context`` words on each
    side, none of them a number: ``24-bit hash of the context << 8 | 8-bit hash of a value``, one
    mark per value, the text's first ``numbers_max`` marks. A run's values are its numbers and,
    for a run of several, their digits read together both ways: "09:47" comes as "47 09" or
    "0947" from one outlet to the next. A context found twice in one text is a list ("up 8.3 %
    in 2013, 16.5 % in 2014"), not a slot, and is left out; a number at the text's very start
    has no context (a dateline's date is never compared)."""
    c = policy.number_context
    runs: dict[int, list[set[int]]] = {}
    # Only tokens starting with a digit can be numbers in digits: visit those, not every token.
    starts = [k for k, token in enumerate(tokens) if token[:1].isdigit()]
    end = 0  # where the last run ended: a start inside it was part of it
    for i in starts:
        if i < end or not _is_digits(tokens[i]):
            continue
        j = i
        while j < len(tokens) and _is_digits(tokens[j]):
            j += 1
        around = [*tokens[max(0, i - c) : i], *tokens[j : j + c]]
        words = [w for token in around for w, _ in token_words(token)]
        if i >= c and j + c <= len(tokens) and all(w & 3 < DIGITS for w in words):
            forms = [f for token in tokens[i:j] for _, f in token_words(token)]
            values = {v for f in forms if (v := _value(f)) is not None}
            digits = [f for f in forms if f.isdigit()]
            if len(digits) > 1:
                values |= {int("".join(digits)), int("".join(reversed(digits)))}
            runs.setdefault(_hash(" ".join(map(str, words)), CONTEXT_BITS), []).append(values)
        end = j
    marks: list[int] = []
    for context, found in runs.items():
        if len(found) == 1:
            marks += [context << VALUE_BITS | _hash(str(v), VALUE_BITS) for v in sorted(found[0])]
    return tuple(marks[: policy.numbers_max])


# Month names as normalize_for_matching spells them, by number: Gregorian (Gulf and Egyptian,
# Levantine), Hijri, Persian solar and Persian Gregorian. The calendar is not kept: a date is
# its (year, month, day), so "14 شوال 1436" is "14/10/1436"; two calendars giving one triple is
# rare and only withholds the verdict "distinct".
_MONTHS: dict[tuple[str, ...], int] = {
    tuple(name.split("_")): number
    for number, names in enumerate(
        (
            "ینایر کانون_الثانی محرم فروردین ژانویه",
            "فبرایر شباط صفر اردیبهشت فوریه",
            "مارس اذار ربیع_الاول خرداد",
            "ابریل افریل نیسان ربیع_الثانی ربیع_الاخر تیر اوریل",
            "مایو ایار جمادی_الاولی جمادی_الاول مرداد مه می",
            "یونیو یونیه حزیران جمادی_الثانیه جمادی_الاخره جمادی_الاخر شهریور ژوین",
            "یولیو یولیه تموز رجب مهر ژوییه",
            "اغسطس اب شعبان ابان اوت",
            "سبتمبر ایلول رمضان اذر سپتامبر",
            "اکتوبر تشرین_الاول شوال دی اکتبر",
            "نوفمبر تشرین_الثانی ذو_القعده ذی_القعده بهمن نوامبر",
            "دیسمبر کانون_الاول ذو_الحجه ذی_الحجه اسفند دسامبر",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH_WORDS = max(len(name) for name in _MONTHS)
_BEFORE_MONTH = frozenset({"من", "شهر"})  # "14 من شهر شوال"
_BEFORE_YEAR = frozenset({"عام", "لعام", "العام", "سنه", "لسنه", "ماه", "سال"})


def _year(value: int | None) -> bool:
    return value is not None and (1300 <= value <= 1500 or 1900 <= value <= 2100)


def _day_month(day: int | None, month: int | None) -> bool:
    return day is not None and month is not None and 1 <= day <= 31 and 1 <= month <= 12


def _digit_value(token: str) -> int | None:
    return int(match.group(1)) if (match := _DIGITS.match(token)) else None


def _numeric_date(values: Sequence[int | None]) -> tuple[int, int, int] | None:
    """ "14 10 1436" (day first) or "1436 10 15" (year first): separators are spaces by now."""
    first, month, last = values
    if _year(last) and _day_month(first, month):
        return cast(int, last), cast(int, month), cast(int, first)
    if _year(first) and _day_month(last, month):
        return cast(int, first), cast(int, month), cast(int, last)
    return None


def _named_date(tokens: Sequence[str], i: int) -> tuple[int, int, int] | None:
    """ "14 شوال 1436", "31 من شهر یولیو عام 2015", "12 فروردین ماه 1402" starting at ``i``."""
    day = _digit_value(tokens[i])
    j = i + 1
    while j < len(tokens) and tokens[j] in _BEFORE_MONTH:
        j += 1
    for width in range(_MONTH_WORDS, 0, -1):
        month = _MONTHS.get(tuple(tokens[j : j + width]))
        if month is None:
            continue
        k = j + width
        while k < len(tokens) and tokens[k] in _BEFORE_YEAR:
            k += 1
        year = _digit_value(tokens[k]) if k < len(tokens) else None
        if _year(year) and _day_month(day, month):
            return cast(int, year), month, cast(int, day)
        return None
    return None


def event_dates(tokens: Sequence[str], policy: SlotPolicy) -> tuple[int, ...]:
    """The full dates the text names (day, month and year; in digits, or with a month's name in
    any of the calendars above), each a 16-bit hash of (year, month, day), the first
    ``dates_max`` distinct ones. A date in the first ``dateline_tokens`` tokens is the outlet's
    dateline, not the event's: a copy republished the next day rewrites it."""
    found: list[int] = []
    for i in range(policy.dateline_tokens, len(tokens)):
        if not tokens[i][:1].isdigit():
            continue
        values = [_digit_value(t) for t in tokens[i : i + 3]]
        date = _numeric_date(values) if len(values) == 3 else None
        date = date or _named_date(tokens, i)
        if date is not None:
            value = _hash("{}-{}-{}".format(*date), DATE_BITS)
            if value not in found:
                found.append(value)
                if len(found) == policy.dates_max:
                    break
    return tuple(found)


def dates_differ(a: Sequence[int], b: Sequence[int]) -> bool:
    """Both texts name the day of what they report, and no day is named by both: two events of
    one template (the same statement on two convicts executed on different days)."""
    return bool(a and b and not set(a) & set(b))


def numbers_differ(a: Sequence[int], b: Sequence[int]) -> int:
    """How many contexts both texts have whose values have nothing in common."""
    mine: dict[int, set[int]] = {}
    theirs: dict[int, set[int]] = {}
    for marks, into in ((a, mine), (b, theirs)):
        for mark in marks:
            into.setdefault(mark >> VALUE_BITS, set()).add(mark & ((1 << VALUE_BITS) - 1))
    return sum(1 for ctx in mine.keys() & theirs.keys() if not mine[ctx] & theirs[ctx])


# --- Alignment ----------------------------------------------------------------------------------
def align(a: Sequence[int], b: Sequence[int]) -> list[tuple[int, int]]:
    """A longest common subsequence of two word arrays, as matched index pairs in order.

    The common prefix and the common suffix are matched as they are (an LCS keeps them), so
    the O(n*m) table covers only the middle, where a copy of the same lead differs: a few
    words. The table is filled from the end; the walk from the start takes a match whenever the
    words are equal (always optimal), else steps the side that keeps the longer remainder
    (ties: ``a``). Deterministic, so a port gives the same pairs."""
    n, m = len(a), len(b)
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    pairs = [(k, k) for k in range(head)]
    pairs += [(head + i, head + j) for i, j in _lcs(a[head : n - tail], b[head : m - tail])]
    pairs += [(n - tail + k, m - tail + k) for k in range(tail)]
    return pairs


def _lcs(a: Sequence[int], b: Sequence[int]) -> list[tuple[int, int]]:
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if a[i] == b[j] else max(below[j], row[j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def hunks(n: int, m: int, pairs: Sequence[tuple[int, int]]) -> list[Hunk]:
    """The unmatched stretches between runs of consecutive matches (in both arrays), with the
    runs' lengths on each side; a stretch at either end has 0 on its open side."""
    runs: list[list[int]] = []  # [i, j, length]
    for i, j in pairs:
        if runs and runs[-1][0] + runs[-1][2] == i and runs[-1][1] + runs[-1][2] == j:
            runs[-1][2] += 1
        else:
            runs.append([i, j, 1])
    result: list[Hunk] = []
    prev_i, prev_j, prev_len = 0, 0, 0
    for i, j, length in [*runs, [n, m, 0]]:
        start_i, start_j = prev_i + prev_len, prev_j + prev_len
        if i > start_i or j > start_j:
            result.append(Hunk(start_i, i, start_j, j, prev_len, length))
        prev_i, prev_j, prev_len = i, j, length
    return result


def _drop_joins(
    xs: list[int], x_joins: list[int], ys: list[int], y_joins: list[int]
) -> tuple[list[int], list[int]]:
    """Removes from a substitution the tokens that are one word written as two on the other
    side ("کم سابقه" / "کمسابقه"): both tokens of the pair and the single one."""
    for _ in range(len(xs) + len(ys)):
        for pair_side, pair_joins, single_side in ((xs, x_joins, ys), (ys, y_joins, xs)):
            hit = next(
                (
                    (p, q)
                    for p in range(len(pair_side) - 1)
                    for q in range(len(single_side))
                    if pair_joins[p] == _single_key(single_side[q])
                ),
                None,
            )
            if hit:
                p, q = hit
                del pair_side[p : p + 2], pair_joins[p : p + 2]
                other_joins = y_joins if pair_side is xs else x_joins
                del single_side[q], other_joins[q]
                break
        else:
            break
    return xs, ys


_NUMBER_KINDS: tuple[tuple[int, SlotKind], ...] = ((DIGITS, "digits"), (NUMBER_WORD, "number_word"))


def _slot_kind(
    xs: Sequence[int], ys: Sequence[int], a: AlignRecord, b: AlignRecord
) -> tuple[SlotKind | None, bool]:
    """What a substitution is, if a slot: numbers (digits, or words: as many on each side, none
    in common) or a weekday replaced by another, or content words on each side that the other
    text's window (lead and title) does not have anywhere (not a re-mention, not a reworded
    function word); and whether it is a headline slot (``Slot.headline``)."""
    for kind, name in _NUMBER_KINDS:
        x_values = [w for w in xs if w & 3 == kind]
        y_values = [w for w in ys if w & 3 == kind]
        # as many numbers on each side: "09 47" for "0947" is a format, not another figure
        if x_values and len(x_values) == len(y_values) and not set(x_values) & set(y_values):
            return name, False
    x_days, y_days = set(xs) & WEEKDAY_WORDS, set(ys) & WEEKDAY_WORDS
    if x_days and y_days and not x_days & y_days:
        return "weekday", False
    in_a, in_b = {*a.words, *a.title}, {*b.words, *b.title}
    x_new = [w for w in xs if w & 3 == CONTENT and w not in WEEKDAY_WORDS and w not in in_b]
    y_new = [w for w in ys if w & 3 == CONTENT and w not in WEEKDAY_WORDS and w not in in_a]
    if not (x_new and y_new):
        return None, False
    return "content", bool(set(x_new) & set(a.title) and set(y_new) & set(b.title))


@dataclass(frozen=True)
class Substitution:
    """A hunk with tokens on both sides (after join variants are dropped) and its slot kind,
    before the policy's context and span limits are applied."""

    hunk: Hunk
    kind: SlotKind | None
    headline: bool = False


def substitutions(a: AlignRecord, b: AlignRecord) -> tuple[Substitution, ...]:
    """Every substitution of the two lead windows, classified (``_slot_kind``). Insertions and
    deletions (attribution, byline, trimmed or added text) are not substitutions."""
    found: list[Substitution] = []
    for h in hunks(len(a.words), len(b.words), align(a.words, b.words)):
        if h.a_end == h.a_start or h.b_end == h.b_start:
            continue
        xs, ys = _drop_joins(
            list(a.words[h.a_start : h.a_end]),
            list(a.joins[h.a_start : h.a_end]),
            list(b.words[h.b_start : h.b_end]),
            list(b.joins[h.b_start : h.b_end]),
        )
        if xs and ys:
            found.append(Substitution(h, *_slot_kind(xs, ys, a, b)))
    return tuple(found)


def slots_of(found: Iterable[Substitution], policy: SlotPolicy) -> tuple[Slot, ...]:
    """The substitutions that are slots under ``policy``: a kind, at most ``max_span`` tokens on
    each side, at least ``context`` matched tokens right before and right after (so never at a
    window's ragged end, where a copy's trimmed or shifted lead stops)."""
    return tuple(
        Slot(
            s.kind,
            s.hunk.a_start,
            s.hunk.a_end,
            s.hunk.b_start,
            s.hunk.b_end,
            min(s.hunk.before, s.hunk.after),
            s.headline,
        )
        for s in found
        if s.kind
        and s.hunk.before >= policy.context
        and s.hunk.after >= policy.context
        and s.hunk.a_end - s.hunk.a_start <= policy.max_span
        and s.hunk.b_end - s.hunk.b_start <= policy.max_span
    )


def verdict(
    found: Iterable[Slot], differ: int, policy: SlotPolicy, *, dates: bool = False
) -> SlotVerdict:
    """The decision from the slots and the differing number marks (``differs_in_slots``)."""
    found = tuple(found)
    typed = next((s.kind for s in found if s.kind != "content"), None)
    content = sum(1 for s in found if s.kind == "content")
    headlines = sum(1 for s in found if s.headline)
    if dates:
        reason = "dates"
    elif differ:
        reason = "numbers"
    elif typed:
        reason = typed
    elif policy.headline_slots and headlines >= policy.headline_slots:
        reason = "headline"
    elif content >= policy.min_slots:
        reason = "slots"
    else:
        reason = ""
    return SlotVerdict(bool(reason), reason, found, differ)


def differs_in_slots(a: AlignRecord, b: AlignRecord, policy: SlotPolicy) -> SlotVerdict:
    """Whether two texts the sketches call copies are two events of one template.

    Distinct when both texts name the day of what they report and no day is named by both
    (``dates_differ``), when a number mark differs (the same four words around different
    figures), when a typed slot is found (a number or a weekday substituted in the lead), when a
    headline slot is (what was swapped is what both headlines name), or when ``min_slots``
    content slots are: one plain content slot is not enough, because copies also swap a word for
    a synonym between identical words ("نصب" / "اقیم", "شکر" / "ثمن")."""
    found = slots_of(substitutions(a, b), policy)
    differ = numbers_differ(a.numbers, b.numbers)
    return verdict(found, differ, policy, dates=dates_differ(a.dates, b.dates))


def describe(record: AlignRecord, start: int, end: int) -> str:
    """The tokens of a span, when the record was built here (diagnostics)."""
    return " ".join(record.tokens[start:end])
