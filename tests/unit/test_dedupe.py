"""Fingerprints and the reference decision (pipeline/dedupe.py). The Lua twin of `similarity` is
held to the same figures in tests/integration/test_dedupe.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipeline.dedupe import (
    SCHEME,
    SLOT_BYTES,
    STRING_SLACK,
    TABLE_MAX_BYTES,
    TABLE_MIN_BYTES,
    DedupePolicy,
    Similarity,
    WindowTable,
    band_slot,
    day_code,
    doc_record,
    fingerprint,
    is_duplicate,
    lead_numbers,
    numbers_differ,
    similarity,
    slot_value,
    table_slots,
    window_arg,
    window_tables,
)

POLICY = DedupePolicy()
ZWNJ = "\u200c"
FOX = (
    "The quick brown fox jumps over the lazy dog near the riverbank every single morning before "
    "sunrise, while the farmers of the valley count their sheep and the baker lights his ovens "
    "for the day."
)
# A Persian agency story written for these tests, in the shared fixture's style.
STORY = [
    f"به گزارش خبرگزاری نمونه، وزیر نیرو روز سه{ZWNJ}شنبه از آغاز مرحله نخست طرح انتقال آب به "
    f"۱۲۰ روستای استان خبر داد و گفت این طرح تا پایان سال به بهره{ZWNJ}برداری می{ZWNJ}رسد.",
    f"او افزود: در این مرحله ۸۵ کیلومتر خط لوله و چهار مخزن ذخیره ساخته می{ZWNJ}شود و "
    f"اعتبار آن از محل بودجه ملی و مشارکت بخش خصوصی تأمین شده است.",
    f"به گفته وزیر، ساکنان این روستاها سال{ZWNJ}ها برای تأمین آب آشامیدنی به تانکرهای سیار "
    f"وابسته بوده{ZWNJ}اند و افت سطح آب{ZWNJ}های زیرزمینی وضعیت را دشوارتر کرده است.",
    f"کارشناسان منابع آب معتقدند اجرای چنین طرح{ZWNJ}هایی بدون اصلاح الگوی مصرف در بخش "
    f"کشاورزی نمی{ZWNJ}تواند بحران کم{ZWNJ}آبی را در درازمدت برطرف کند.",
]


def fp(text: str):
    result = fingerprint(text, POLICY)
    assert result is not None
    return result


def test_band_slot_splits_the_hash_into_position_and_check() -> None:
    for band in (0, 1, 2**32 - 1, 2**32, 1_944_496_352, 2**40 - 1):
        position, check = band_slot(band)
        assert 0 <= position < 2**32 and 0 <= check < 256
        assert check << 32 | position == band
    assert slot_value(0xAB, 0x12, 1) == 0xAB_12_000001
    assert slot_value(255, 255, 2**24 - 1) == 2**40 - 1  # the largest 40-bit slot


def test_day_codes_tell_apart_the_days_of_any_window() -> None:
    assert day_code("19700101") == date(1970, 1, 1).toordinal() % 256
    assert (day_code("20261125") - day_code("20261124")) % 256 == 1
    assert day_code("20261231") + 1 == day_code("20270101")  # across a year
    days = DedupePolicy(window_days=90).days(datetime(2026, 11, 25, tzinfo=UTC))
    assert len({day_code(day) for day in days}) == 90
    assert window_arg(["20261125", "20261124"]) == (
        f"20261125:{day_code('20261125')},20261124:{day_code('20261124')}"
    )


def test_window_tables_are_read_as_the_script_lists_them() -> None:
    assert window_tables(None) == window_tables(b"") == []
    assert window_tables(b"3:13056:20261120 4:52224:-") == [
        WindowTable(3, 13056, "20261120"),
        WindowTable(4, 52224, None),
    ]


def test_signature_is_pinned() -> None:
    """A rensa upgrade that changes hashing must fail here, not silently split the index."""
    result = fp(FOX)
    assert SCHEME == "n1-c8-mh128x8-s20251213-b32x4-l8x4-h40-rensa05-wt1-ln1-dr1-al1"
    # The low bytes of the 16-bit values pinned before (f9c6 bec5 d006 774c): same hashing.
    assert result.signature[:8].hex() == "c6c5064c7fb0b3a9"
    assert result.lead_signature[:8].hex() == "c6c5064c7fb0b3a9"
    assert (result.shingles, result.lead_shingles) == (150, 150)
    # 40-bit band hashes; their top 32 bits are the 31-bit ones pinned before (1944496352,
    # 180693266) where those kept bit 31: the same hashing, 8 more bits of it.
    assert result.bands[:2] == (497791066326, 596013290002)
    assert len(result.signature) == 128 and len(result.lead_signature) == 128
    assert len(result.bands) == 40


def test_too_short_texts_have_no_fingerprint() -> None:
    assert fingerprint("Short brief of twenty words at most.", POLICY) is None


@pytest.mark.parametrize(
    "variant",
    [
        "\n\n".join(STORY).replace(ZWNJ, ""),  # ZWNJ written as nothing
        "\n\n".join(STORY).replace(ZWNJ, " "),  # ... as a space
        "\n\n".join(STORY).replace("ی", "ي").replace("ک", "ك"),  # Arabic yeh and kaf
        "\n\n".join(STORY).translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")),  # ASCII digits
        "\n\n".join(STORY).replace("،", "").replace(":", " -"),  # punctuation
    ],
)
def test_spelling_variants_have_identical_fingerprints(variant: str) -> None:
    assert fp(variant) == fp("\n\n".join(STORY))


def test_syndicated_copy_is_a_duplicate() -> None:
    original = "\n\n".join(STORY)
    copy = "\n\n".join(
        [STORY[0].replace("خبرگزاری نمونه", "خبرگزاری دیگر به نقل از خبرگزاری نمونه"), *STORY[1:3]]
    )  # new attribution, last paragraph trimmed
    sim = similarity(fp(original), fp(copy))
    assert sim.containment > 0.9 and sim.lead > 0.5
    assert is_duplicate(sim, POLICY)
    assert similarity(fp(copy), fp(original)) == sim  # symmetric


def test_bundle_leading_with_another_story_is_not_a_duplicate() -> None:
    other = (
        f"در خبری دیگر، شورای شهر تهران امروز طرح توسعه خطوط اتوبوس{ZWNJ}رانی را تصویب کرد و "
        f"شهردار گفت ۳۰۰ دستگاه اتوبوس تازه تا پایان سال وارد ناوگان می{ZWNJ}شود. " * 3
    )
    bundle = other + "\n\n" + "\n\n".join(STORY[:2])
    sim = similarity(fp("\n\n".join(STORY[:2])), fp(bundle))
    assert sim.containment > 0.8  # the short story is inside the bundle ...
    assert sim.lead < POLICY.lead  # ... but the bundle leads with something else
    assert not is_duplicate(sim, POLICY)


def test_decision_rule() -> None:
    assert is_duplicate(Similarity(0.85, 0.9, 0.0), POLICY)
    assert is_duplicate(Similarity(0.4, 0.75, 0.3), POLICY)
    assert not is_duplicate(Similarity(0.4, 0.75, 0.1), POLICY)
    assert not is_duplicate(Similarity(0.6, 0.65, 0.9), POLICY)


# A template story of this test's own ("the fifth relief plane landed..."), Arabic.
PLANE = (
    "واس - الرياض: وصلت اليوم إلى مطار عدن الدولي الطائرة الإغاثية الخامسة المقدمة من مركز "
    "الملك سلمان للإغاثة والأعمال الإنسانية، وعلى متنها 40 طنا من الأدوية والمستلزمات الطبية "
    "والمواد الغذائية لتوزيعها على المستشفيات والأسر المحتاجة في المحافظات الجنوبية. وأوضح "
    "المتحدث الرسمي للمركز أن الطائرة تأتي ضمن جسر جوي يهدف إلى تخفيف معاناة الأشقاء في "
    "اليمن، وأن فرق المركز الميدانية تتولى التوزيع بالتنسيق مع السلطات الصحية المحلية وفق "
    "آلية متفق عليها مع المنظمات الدولية العاملة هناك."
)


def test_a_number_changed_in_the_same_words_of_the_lead_is_another_story() -> None:
    # "5th relief plane" vs "6th relief plane": the texts are alike, the stories are not.
    sixth = PLANE.replace("الخامسة", "السادسة")
    sim = similarity(fp(PLANE), fp(sixth))
    assert sim.jaccard > 0.8 and sim.numbers_differ
    assert not is_duplicate(sim, POLICY)
    # Digits are not compared: a copy republished the next day rewrites its dateline's date.
    next_day = PLANE.replace("واس - الرياض:", "الرياض 22 يوليو (واس):")
    sim = similarity(fp(PLANE.replace("واس - الرياض:", "الرياض 21 يوليو (واس):")), fp(next_day))
    assert not sim.numbers_differ and is_duplicate(sim, POLICY)


def test_copies_keep_their_lead_numbers_whatever_the_spelling() -> None:
    copies = [
        PLANE.replace("واس - الرياض: ", "الرياض - عكاظ: "),  # another agency's dateline
        PLANE.replace("40", "٤٠"),  # Arabic-Indic digits
        PLANE.replace("الخامسة", "الخامسه"),  # ة written as ه
        PLANE.replace("الخامسة", "الخامسة،"),  # punctuation
    ]
    for copy in copies:
        sim = similarity(fp(PLANE), fp(copy))
        assert not sim.numbers_differ and is_duplicate(sim, POLICY), copy[:40]


def test_lead_numbers_only_count_numbers_between_two_words() -> None:
    marks = lead_numbers("سرعه 15 35 کم فی الدفعه الثانیه من المعونه خمس ثلاث قاطرات")
    assert [m & 0xFF for m in marks] == [2]  # digits, and words next to a number, left out
    assert lead_numbers("") == ()
    far = "کلمه " * 100 + "الدفعه الثانیه من"  # beyond the lead's first LEAD_CHARS
    assert lead_numbers(far) == ()
    assert numbers_differ(marks, lead_numbers("الدفعه الثالثه من"))
    assert not numbers_differ(marks, lead_numbers("الدفعه الثانیه من"))
    assert not numbers_differ(marks, lead_numbers("الشحنه الثالثه من"))  # other words


def test_slot_table_steps_through_allocator_size_classes() -> None:
    # 5-byte slots in 1 MiB x 1, 1.25, 1.5, 1.75, 2, 2.5, ... less the header slack, up to
    # 512 MiB (Redis's largest string).
    assert table_slots(0) == (TABLE_MIN_BYTES - STRING_SLACK) // SLOT_BYTES == 209_702
    wanted = 100_000 * 7 * 40 / 0.5  # 7 days of 100,000 items at half a band entry per slot
    assert table_slots(wanted) == (320 * 2**20 - STRING_SLACK) // 5  # 67,108,851 slots
    assert table_slots((8 * 2**20 - STRING_SLACK) // 5) == (8 * 2**20 - STRING_SLACK) // 5
    assert table_slots((8 * 2**20 - STRING_SLACK) // 5 + 1) == (10 * 2**20 - STRING_SLACK) // 5
    assert table_slots(10**12) == (TABLE_MAX_BYTES - STRING_SLACK) // 5
    series = {TABLE_MIN_BYTES * m * 2**k // 4 for m in (4, 5, 6, 7) for k in range(10)}
    sizes = [table_slots(n) * 5 + STRING_SLACK for n in range(0, 120_000_000, 99_991)]
    assert sizes == sorted(sizes)
    for size in sizes:  # whole slots: up to 4 bytes of its class are left besides the slack
        assert 0 <= min(c for c in series if c >= size) - size < SLOT_BYTES, size
    assert TABLE_MAX_BYTES - SLOT_BYTES < max(sizes) <= TABLE_MAX_BYTES


def test_a_doc_record_carries_the_slot_record_between_the_numbers_and_the_source() -> None:
    """The layout PUBLISH_ITEM reads (lua/publish_item/40_records.lua; dedupe.RECORD_*_AT):
    positions as the script computes them, 0-based here."""
    import struct

    from pipeline.align import AlignRecord, align_record

    text = PLANE
    fingerprinted = fp(text)
    aligned = align_record(text, "الطائرة الإغاثية الخامسة").to_bytes()
    record = doc_record(fingerprinted, "a" * 24, "SPA", aligned)
    numbers_at = 288
    assert record[264:numbers_at] == b"a" * 24
    slot_at = numbers_at + 1 + 4 * record[numbers_at] + 4  # after the kept record's place
    (length,) = struct.unpack(">H", record[slot_at : slot_at + 2])
    assert AlignRecord.from_bytes(record[slot_at + 2 : slot_at + 2 + length]) == (
        AlignRecord.from_bytes(aligned)
    )
    assert record[slot_at + 2 + length :] == b"SPA"
    assert len(record) - len(doc_record(fingerprinted, "a" * 24, "SPA")) == len(aligned)
