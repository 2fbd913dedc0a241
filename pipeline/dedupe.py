"""Near-duplicate detection of syndicated copies: fingerprints and the decision rule.

A fingerprint is a 128-permutation MinHash of the text's character 8-grams (after
``normalize_for_matching`` with spaces removed, so ZWNJ written as nothing, a space or U+200C
is one spelling) plus a MinHash of its lead (first ``LEAD_CHARS`` characters). LSH bands of both
find candidates in Redis; the decision is made inside one Lua script
(pipeline/lua/publish_item/, ``publish.PUBLISH_ITEM``) that also inserts and publishes, so
two workers finishing copies of one story publish one.

``similarity`` and ``is_duplicate`` here are the reference of what the script computes; unit tests
hold the two to the same figures. Measured choices and figures: docs/dedupe.md.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec
import rensa

from pipeline.align import ALIGN_VERSION, SlotPolicy
from pipeline.align import numbers_differ as differing_contexts
from pipeline.models import Similarity
from pipeline.normalize import (
    MATCH_NORMALIZER_VERSION,
    normalize_for_matching,
    number_value,
    short_hash,
)

NUM_PERM = 128
SEED = 20251213
SHINGLE = 8
LEAD_CHARS = 300
# b-bit MinHash (Li and Koenig): only the low 8 bits of each value are kept. Chance collisions
# (1 in 256) are corrected in _estimate; 16 bits took 128 B more per item and changed no decision
# on the development sets (docs/dedupe.md).
SIGNATURE_BITS = 8
SIGNATURE_BYTES = NUM_PERM * SIGNATURE_BITS // 8  # of each signature in a record
ITEM_ID_CHARS = 24  # normalize.short_hash's default: an item id in a record
# doc_record's layout as 1-based positions, as the publish script reads a record (it gets them
# from here: publish.PUBLISH_ITEM): two signatures, their two 4-byte shingle counts, the item
# id, then the count of the lead's numbers.
RECORD_COUNTS_AT = 2 * SIGNATURE_BYTES + 1
RECORD_ITEM_ID_AT = RECORD_COUNTS_AT + 8
RECORD_NUMBERS_AT = RECORD_ITEM_ID_AT + ITEM_ID_CHARS
FULL_BANDS, FULL_ROWS = 32, 4
LEAD_BANDS, LEAD_ROWS = 8, 4
LEAD_NUMBERS_MAX = 8  # number words of the lead kept per item (4 bytes each): lead_numbers
# A band hash has 40 bits: the low 32 choose its slot in the window table, the high 8 are a
# check stored with the item's day and number (so another band hash landing in the same slot is
# told apart in 255 cases of 256 without reading any record).
BAND_HASH_BITS = 40
# The window's band entries live in one slot table, a STRING of 40-bit slots
# (slot_value: check << 32 | day code << 24 | item number that day), one slot per band entry,
# written with one BITFIELD per insert and read with one BITFIELD_RO per check, whatever the
# window's length (docs/dedupe.md). Slots are never cleared: a later entry landing on a slot
# replaces the earlier one, whatever its day, so what an entry risks is the entries written
# between the original and its copy (L per slot: lost with probability 1 - e^-L). At SLOT_LOAD
# per window that is 7 % a day later (7-day window) and 39 % at the window's end. The table is
# sized for SLOT_LOAD at the busiest day still in the window times the window's days; past
# SLOT_LOAD_MAX a larger one is started (up to COPY_MAX_BYTES it is the old one copied four
# times over, so no older table stays to be read; a table of the largest size is followed by
# another of that size).
SLOT_BYTES = 5
SLOT_ITEM_BITS = 24  # the item's number that day (1-based, 0 = empty slot): 16.7 million a day
SLOT_DAY_BITS = 8  # the day's code (day_code): windows up to 255 days tell their days apart
SLOT_LOAD = 0.5
SLOT_LOAD_MAX = 0.7
# A power of two; sizes step through allocator size classes. In a smaller table an item's own 40
# entries land on one another more often (at 16 KiB one item in four lost one that way), and a
# new deployment's table grows more times.
TABLE_MIN_BYTES = 1 << 20
TABLE_MAX_BYTES = 1 << 29  # 512 MiB, Redis's largest string: 1.3 million items at SLOT_LOAD
# Tables up to 4 MiB grow in place, copied (a copy blocks Redis for as long as it takes: the
# figures are in docs/dedupe.md); larger ones are kept and read until they leave the window.
COPY_MAX_BYTES = 1 << 22
STRING_SLACK = 64  # bytes left for a string's header so that it fills its size class exactly
# A day's fingerprint records are packed into strings of this size, each created whole so that
# it fills its allocator size class exactly (64 KiB, less the string header), ~220 records each.
RECORD_CHUNK_BYTES = 65_536 - STRING_SLACK
SOURCE_MAX_CHARS = 100  # of the outlet name kept in a record (so a record always fits a chunk)
# Everything that makes two signatures comparable; part of every dedupe key name, so a change
# starts a fresh index instead of comparing incompatible signatures. rensa's minor version is in
# it because its hashing is only promised stable within one (tests pin a golden signature).
# "wt1": band entries in one slot table for the whole window (replacing per-day slot tables).
# "ln1": doc records carry the lead's numbers (lead_numbers).
# "dr1": records packed per day in chunks, found through the day's ``where``.
# "al<n>": doc records carry the slot check's record (pipeline/align.py, ALIGN_VERSION), and
# "الاثنين" (Monday) is no longer read as the number two.
SCHEME = (
    f"n{MATCH_NORMALIZER_VERSION}-c{SHINGLE}-mh{NUM_PERM}x{SIGNATURE_BITS}-s{SEED}"
    f"-b{FULL_BANDS}x{FULL_ROWS}"
    f"-l{LEAD_BANDS}x{LEAD_ROWS}-h{BAND_HASH_BITS}-rensa05-wt1-ln1-dr1-al{ALIGN_VERSION}"
)


class Fingerprint(msgspec.Struct, frozen=True):
    signature: bytes  # NUM_PERM uint8: low 8 bits of each MinHash value (b-bit MinHash)
    lead_signature: bytes  # NUM_PERM uint8: low 8 bits of the lead's MinHash values
    shingles: int
    lead_shingles: int
    bands: tuple[int, ...]  # FULL_BANDS + LEAD_BANDS band hashes (BAND_HASH_BITS each)
    lead_numbers: tuple[int, ...] = ()  # see lead_numbers


@dataclass(frozen=True)
class DedupePolicy:
    """The operating point (calibrated on the development sets; see docs/dedupe.md)."""

    window_days: int = 7
    min_chars: int = 150  # normalized characters; shorter texts are only deduplicated exactly
    jaccard: float = 0.8  # duplicate at this resemblance, whatever the lead
    containment: float = 0.7  # or at this containment ...
    lead: float = 0.2  # ... when both leads are found in the other text (not a bundle)
    max_candidates: int = 16
    # Verification of what differs between a candidate and the item (pipeline/align.py); None
    # leaves the sketches' verdict as it is.
    slots: SlotPolicy | None = field(default_factory=SlotPolicy)

    def days(self, now: datetime | None = None) -> list[str]:
        """Day buckets to search (UTC), today first."""
        now = now or datetime.now(UTC)
        return [(now - timedelta(days=d)).strftime("%Y%m%d") for d in range(self.window_days)]


def fingerprint(
    text: str, policy: DedupePolicy, *, normalized: str | None = None
) -> Fingerprint | None:
    """The text's fingerprint, or None when it is too short to tell copies from templates.
    ``normalized``: ``normalize_for_matching(text)`` when the caller has it already."""
    normalized = normalize_for_matching(text) if normalized is None else normalized
    joined = normalized.replace(" ", "")
    if len(joined) < policy.min_chars:
        return None
    shingles = _shingles(joined)
    full = _minhash(shingles)
    lead_shingles = _shingles(joined[:LEAD_CHARS])
    lead = _minhash(lead_shingles)
    return Fingerprint(
        signature=bytes(v & 0xFF for v in full),
        lead_signature=bytes(v & 0xFF for v in lead),
        shingles=len(shingles),
        lead_shingles=len(lead_shingles),
        bands=_bands(full, FULL_BANDS, FULL_ROWS, 0) + _bands(lead, LEAD_BANDS, LEAD_ROWS, 100),
        lead_numbers=lead_numbers(normalized),
    )


def lead_numbers(normalized: str) -> tuple[int, ...]:
    """The numbers written as words in the lead (its first ``LEAD_CHARS`` characters, as for the
    lead MinHash), each with the words around it: ``24-bit hash of (word before, word after)
    << 8 | value``. Template stories differ in little else ("the fifth relief plane" vs "the
    sixth", "the second aid batch" vs "the third"), and copies keep them.

    Digits are left out: a copy republished the next day rewrites its dateline's date
    ("الرياض 21 يوليو" -> "22 يوليو"), and times and counts get rounded or converted. Only a
    number between two words counts: a neighbour that is itself a number makes a compound
    or a range, whose parts copies rewrite too."""
    tokens, chars = [], 0
    for token in normalized.split():
        if chars >= LEAD_CHARS:
            break
        tokens.append(token)
        chars += len(token)
    values = [number_value(token) for token in tokens]
    marks: list[int] = []
    for i in range(1, len(tokens) - 1):
        value = values[i]
        if value is None or tokens[i].isdigit():
            continue
        if values[i - 1] is not None or values[i + 1] is not None:
            continue
        context = int(short_hash(f"{tokens[i - 1]} {tokens[i + 1]}", 6), 16)
        marks.append(context << 8 | value)
        if len(marks) == LEAD_NUMBERS_MAX:
            break
    return tuple(marks)


def numbers_differ(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether the same words of both leads hold different numbers (no value in common). The
    marks are laid out as the slot check's number marks (context << 8 | value), so its
    comparison serves both."""
    return differing_contexts(a, b) > 0


def similarity(a: Fingerprint, b: Fingerprint) -> Similarity:
    jaccard = _estimate(_matches(a.signature, b.signature), SIGNATURE_BITS)
    containment = _containment(jaccard, a.shingles, b.shingles, min(a.shingles, b.shingles))
    lead = min(_lead_in(a, b), _lead_in(b, a))
    differ = numbers_differ(a.lead_numbers, b.lead_numbers)
    return Similarity(jaccard=jaccard, containment=containment, lead=lead, numbers_differ=differ)


def is_duplicate(sim: Similarity, policy: DedupePolicy) -> bool:
    if sim.numbers_differ:  # the 5th relief plane is not the 6th, however alike the text
        return False
    return sim.jaccard >= policy.jaccard or (
        sim.containment >= policy.containment and sim.lead >= policy.lead
    )


def band_slot(band_hash: int) -> tuple[int, int]:
    """(position hash, check) of a band hash: its slot in a table of N slots is
    ``position % N``, and the slot holds ``slot_value(check, day code, item number)``."""
    return band_hash & 0xFFFF_FFFF, band_hash >> 32


def slot_value(check: int, day: int, item_number: int) -> int:
    return (check << SLOT_DAY_BITS | day) << SLOT_ITEM_BITS | item_number


def day_code(day: str) -> int:
    """The code of a day bucket ("YYYYMMDD") in a slot: its day number modulo 256."""
    return date(int(day[:4]), int(day[4:6]), int(day[6:])).toordinal() % (1 << SLOT_DAY_BITS)


def window_arg(days: Sequence[str]) -> str:
    """PUBLISH_ITEM's PublishArgs.days: the window's days, today first, each with its code."""
    return ",".join(f"{day}:{day_code(day)}" for day in days)


@dataclass(frozen=True)
class WindowTable:
    """One slot table of the window, as the ``tables`` key lists it."""

    number: int  # the key is ``<prefix>slots:<number>``
    slots: int
    last_day: str | None  # the last day it took entries ("YYYYMMDD"); None: it still does


def window_tables(described: bytes | str | None) -> list[WindowTable]:
    """The window's slot tables, oldest first, from the index's ``tables`` key
    ("number:slots:last day" each, "-" for the table taking entries; PUBLISH_ITEM writes it)."""
    text = described.decode() if isinstance(described, bytes) else described or ""
    tables = []
    for number, slots, last in (t.split(":") for t in text.split()):
        tables.append(WindowTable(int(number), int(slots), None if last == "-" else last))
    return tables


def table_slots(wanted: float) -> int:
    """Slots of a new slot table holding at least ``wanted`` (the script sizes a table for
    ``busiest day's items * window days * bands / SLOT_LOAD``).

    Sizes step through the allocator's size classes, four per doubling (1 MiB x 1, 1.25,
    1.5, 1.75, 2, 2.5, ...) up to 512 MiB, less ``STRING_SLACK`` so that the string with its
    header fits its class exactly (a 16 MiB table would take a 20 MiB block)."""
    base, step = TABLE_MIN_BYTES, 0
    while _class_bytes(base, step) < TABLE_MAX_BYTES:
        if (_class_bytes(base, step) - STRING_SLACK) // SLOT_BYTES >= wanted:
            break
        base, step = (base * 2, 0) if step == 3 else (base, step + 1)
    return (_class_bytes(base, step) - STRING_SLACK) // SLOT_BYTES


def _class_bytes(base: int, step: int) -> int:
    return base * (4 + step) // 4


def _shingles(joined: str) -> set[str]:
    return {joined[i : i + SHINGLE] for i in range(max(1, len(joined) - SHINGLE + 1))}


def _minhash(shingles: set[str]) -> list[int]:
    sketch = rensa.RMinHash(NUM_PERM, SEED)
    sketch.update(list(shingles))
    return list(sketch.digest())


def _bands(values: list[int], bands: int, rows: int, salt: int) -> tuple[int, ...]:
    # The band number is hashed in, so equal values in different bands never collide.
    mask = (1 << BAND_HASH_BITS) - 1
    return tuple(
        int(short_hash(f"{salt + b}:{values[b * rows : (b + 1) * rows]}", 10), 16) & mask
        for b in range(bands)
    )


def _matches(a: bytes, b: bytes) -> int:
    return sum(x == y for x, y in zip(a, b, strict=True))


def _estimate(matches: int, bits: int) -> float:
    """Jaccard from matching b-bit MinHash values, corrected for chance collisions."""
    chance = 1.0 / (1 << bits)
    return max(0.0, (matches / NUM_PERM - chance) / (1 - chance))


def _containment(jaccard: float, size_a: int, size_b: int, of: int) -> float:
    # |A ∩ B| = J (|A| + |B|) / (1 + J)
    return min(1.0, jaccard * (size_a + size_b) / ((1 + jaccard) * of))


def _lead_in(a: Fingerprint, b: Fingerprint) -> float:
    """Share of a's lead found in b: MinHash of a's lead vs b's full MinHash (same permutations)."""
    jaccard = _estimate(_matches(a.lead_signature, b.signature), SIGNATURE_BITS)
    return _containment(jaccard, a.lead_shingles, b.shingles, a.lead_shingles)


def doc_record(fp: Fingerprint, item_id: str, source: str | None, aligned: bytes = b"") -> bytes:
    """What the index keeps per published item, in the layout the Lua script reads: the
    signatures, their shingle counts, the item id, the lead's numbers, 4 zero bytes (in a
    withheld copy's record, written by the script, where its kept item's record is: day code,
    3-byte number), the slot check's record (``aligned``: ``AlignRecord.to_bytes()``, after its
    2-byte length) and the source."""
    counts = struct.pack(">II", fp.shingles, fp.lead_shingles)
    numbers = bytes([len(fp.lead_numbers)]) + b"".join(m.to_bytes(4) for m in fp.lead_numbers)
    head = fp.signature + fp.lead_signature + counts + item_id.encode()
    kept_at = bytes(4)  # a published item's record; the script fills it in a copy's record
    slot_record = struct.pack(">H", len(aligned)) + aligned
    return head + numbers + kept_at + slot_record + (source or "")[:SOURCE_MAX_CHARS].encode()
