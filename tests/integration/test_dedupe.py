"""Near-duplicate detection on real Redis: the Lua decision, its atomicity, and the pipeline."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from pipeline import publish
from pipeline.dedupe import (
    RECORD_CHUNK_BYTES,
    SCHEME,
    SLOT_BYTES,
    SLOT_LOAD,
    SLOT_LOAD_MAX,
    TABLE_MIN_BYTES,
    DedupePolicy,
    WindowTable,
    band_slot,
    day_code,
    fingerprint,
    similarity,
    slot_value,
    table_slots,
    window_tables,
)
from pipeline.models import Cluster, Discarded, FeedInfo, Item, Published, Similarity
from pipeline.normalize import content_hash, short_hash
from pipeline.publish import PublishPolicy, biggest_clusters, publish_item
from tests.integration.conftest import (
    KEYS,
    add_feeds,
    stream_items,
    validate,
    wait_for,
    wait_for_items,
)
from tests.integration.test_pipeline import serve, url
from tests.unit.test_dedupe import PLANE, STORY, ZWNJ
from workers.demo_site import DemoFeed, read_fixture

POLICY = PublishPolicy(
    maxlen=1000, dedupe_ttl_seconds=3600, min_text_chars=250, near=DedupePolicy()
)
NO_ROUTES = publish.routing_arg(KEYS, "0", ())  # ARGV[7] when no route is stored
PERSIAN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "syndication"


def item(key: str, text: str, source: str = "Agency", title: str = "T") -> Item:
    return Item(
        id=short_hash(key),
        url=f"https://{source.lower()}.example/{key}",
        canonical_url=None,
        feed=FeedInfo(url=f"https://{source.lower()}.example/rss", title=source, tags=()),
        source=source,
        title=title,
        author=None,
        published_at=None,
        fetched_at="2025-12-13T00:00:00Z",
        language="fa",
        text=text,
        summary="",
        categories=(),
        image=None,
        extraction="feed",
        content_hash=content_hash(text),
        cluster=Cluster(id="x"),
    )


AGENCIES = ["ایرنا", "ایسنا", "مهر", "تسنیم", "فارس", "ایلنا", "برنا", "میزان"]


def copies_of(story: list[str], n: int) -> list[str]:
    """n syndicated copies: other attributions, ZWNJ as space or nothing, Arabic letters, trims."""
    variants = []
    for k in range(n):
        # Another agency's name, not a number: copies' attributions differ in names, while a
        # number between identical words is a template's slot (pipeline/align.py).
        lead = story[0].replace(
            "خبرگزاری نمونه", f"خبرگزاری {AGENCIES[k % len(AGENCIES)]} به نقل از خبرگزاری نمونه"
        )
        text = "\n\n".join([lead, *story[1 : len(story) - (k % 2)]])
        if k % 3 == 1:
            text = text.replace(ZWNJ, " ")
        if k % 3 == 2:
            text = text.replace(ZWNJ, "").replace("ی", "ي").replace("ک", "ك")
        variants.append(text)
    return variants


WORDS = [
    "وزیر",
    "استان",
    "روستا",
    "آب",
    "برق",
    "جاده",
    "مدرسه",
    "بیمارستان",
    "کارخانه",
    "بندر",
    "فرودگاه",
    "دانشگاه",
    "بازار",
    "گندم",
    "نفت",
    "گاز",
    "مجلس",
    "دولت",
    "شورا",
    "شهردار",
    "کارگران",
    "کشاورزان",
    "دانشجویان",
    "پزشکان",
    "معلمان",
    "رانندگان",
    "افتتاح",
    "تصویب",
    "تعطیل",
    "توسعه",
    "بازسازی",
    "اعتراض",
    "استقبال",
    "بودجه",
    "طرح",
    "قرارداد",
    "سفر",
    "دیدار",
    "گزارش",
]


def distinct_story(seed: int) -> list[str]:
    """A story of its own (random words seeded by ``seed``) in STORY's shape."""
    rng = random.Random(seed)
    return [
        "به گزارش خبرگزاری نمونه، " + " ".join(rng.choice(WORDS) for _ in range(30)) + "."
        for _ in range(4)
    ]


async def test_lua_decision_matches_the_python_reference(redis: Redis) -> None:
    original = "\n\n".join(STORY)
    assert isinstance(await publish_item(redis, KEYS, "f", item("o", original), POLICY), Published)
    indexed = [original]  # a withheld copy is indexed too, under the original's id
    for k, copy in enumerate(copies_of(STORY, 3)):
        outcome = await publish_item(redis, KEYS, "f", item(f"c{k}", copy), POLICY)
        assert isinstance(outcome, Discarded) and outcome.reason == "duplicate_near"
        assert outcome.duplicate_of == short_hash("o")
        fb = fingerprint(copy, POLICY.near)
        assert fb is not None
        # The figures are the reference's against one of the indexed texts: a copy's band
        # entries replace the original's where their bands are equal (the same slots), so the
        # record read may be a copy's; each names the original.
        refs = [similarity(fb, fingerprint(text, POLICY.near)) for text in indexed]  # type: ignore[arg-type]
        indexed.append(copy)
        assert outcome.similarity in [
            Similarity(
                jaccard=round(ref.jaccard, 3),
                containment=round(ref.containment, 3),
                lead=round(ref.lead, 3),
            )
            for ref in refs
        ]
    [cluster] = await biggest_clusters(redis, KEYS, 10)
    assert cluster.size == 4 and cluster.id == short_hash("o")
    duplicates = [
        json.loads(f[b"duplicate"]) for _i, f in await redis.xrange(KEYS.duplicates_stream)
    ]
    assert [d["duplicate_of"] for d in duplicates] == [short_hash("o")] * 3
    assert {"jaccard", "containment", "lead"} == set(duplicates[0]["similarity"])
    assert duplicates[0]["url"].startswith("https://agency.example/c")


@dataclasses.dataclass(frozen=True)
class DaysAgo(DedupePolicy):
    """The dedupe policy as a worker running ``ago`` days earlier sees it."""

    ago: int = 1

    def days(self, now: datetime | None = None) -> list[str]:
        return super().days((now or datetime.now(UTC)) - timedelta(days=self.ago))


async def slots_of(redis: Redis, table: str, slots: int, bands: tuple[int, ...]) -> list[int]:
    """The values of a slot table at the bands' slots (dedupe.band_slot, table_slots)."""
    reads = [("u40", f"#{band_slot(band)[0] % slots}") for band in bands]
    return list(await redis.bitfield_ro(table, *reads[0], items=reads[1:]))


async def listed_tables(redis: Redis) -> list[WindowTable]:
    return window_tables(await redis.get(f"{KEYS.dedupe_index(SCHEME)}tables"))


async def test_copies_are_found_across_days_through_the_window_table(redis: Redis) -> None:
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()
    earlier = dataclasses.replace(POLICY, near=DaysAgo(ago=3))
    original = item("o", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", original, earlier), Published)
    # The window's first table: sized for an empty window, the original's 40 bands in it as
    # (check, the code of three days ago, item number 1).
    first, slots = f"{prefix}slots:0", table_slots(0)
    assert await listed_tables(redis) == [WindowTable(0, slots, None)]
    assert await redis.strlen(first) == slots * SLOT_BYTES
    assert 0 < await redis.ttl(first) <= (POLICY.near.window_days + 1) * 86_400
    fp = fingerprint(original.text, POLICY.near)
    assert fp is not None
    written = {}  # in band order: two bands of one item may share a slot, the later one stays
    for band in fp.bands:
        position, check = band_slot(band)
        written[position % slots] = slot_value(check, day_code(today[3]), 1)
    expected = [written[band_slot(band)[0] % slots] for band in fp.bands]
    assert await slots_of(redis, first, slots, fp.bands) == expected
    assert await redis.strlen(f"{prefix}{today[3]}:where") == 6  # one record that day

    # Today's first item checks the table against the busiest day in the window: 2,000 items
    # yesterday want a table far larger than this one, so a new one is started and this one
    # is kept, to be read until today leaves the window.
    await redis.setrange(f"{prefix}{today[1]}:where", 2_000 * 6 - 1, b"\0")
    other = item("other", "\n\n".join(distinct_story(7)))
    assert isinstance(await publish_item(redis, KEYS, "f", other, POLICY), Published)
    busy = table_slots(2_000 * 7 * 40 / SLOT_LOAD)
    assert await listed_tables(redis) == [
        WindowTable(0, slots, today[0]),
        WindowTable(1, busy, None),
    ]
    assert await redis.strlen(f"{prefix}slots:1") == busy * SLOT_BYTES

    copy = item("c", copies_of(STORY, 1)[0], source="Other")
    outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == original.id

    # The original is found through the table alone: with its slots cleared (and the copy's,
    # indexed under the original's id in the busy table), it is not found (its record is still
    # there).
    await redis.set(first, bytes(slots * SLOT_BYTES))
    await redis.set(f"{prefix}slots:1", bytes(busy * SLOT_BYTES))
    again = item("c2", copies_of(STORY, 2)[1], source="Third")
    assert isinstance(await publish_item(redis, KEYS, "f", again, POLICY), Published)

    # A week later the kept table's last day has left the window: the day's first item drops it
    # from the list (its key expires on its own).
    later = dataclasses.replace(POLICY, near=DaysAgo(ago=-7))
    assert isinstance(
        await publish_item(redis, KEYS, "f", item("w", "\n\n".join(distinct_story(8))), later),
        Published,
    )
    assert await listed_tables(redis) == [WindowTable(1, busy, None)]


async def test_entries_of_days_out_of_the_window_are_skipped(redis: Redis) -> None:
    """Slots are never cleared: an entry stays until a later one lands on its slot, and the day
    code in it tells whether its day is still in the window."""
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()
    week_ago = dataclasses.replace(POLICY, near=DaysAgo(ago=7))  # just out of today's window
    week_ago_day = week_ago.near.days()[0]
    assert week_ago_day < today[-1]
    original = item("o", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", original, week_ago), Published)
    fp = fingerprint(original.text, POLICY.near)
    assert fp is not None
    slots = table_slots(0)
    values = await slots_of(redis, f"{prefix}slots:0", slots, fp.bands)
    assert slot_value(band_slot(fp.bands[0])[1], day_code(week_ago_day), 1) in values

    today_copy = item("c2", copies_of(STORY, 2)[1], source="Third")
    assert isinstance(await publish_item(redis, KEYS, "f", today_copy, POLICY), Published)
    yesterday = dataclasses.replace(POLICY, near=DaysAgo(ago=1))  # its window still has that day
    late = item("c1", copies_of(STORY, 1)[0], source="Other")  # (and not today: c2 is skipped)
    outcome = await publish_item(redis, KEYS, "f", late, yesterday)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == original.id


async def test_a_small_table_outgrown_by_the_day_is_copied_into_one_four_times_larger(
    redis: Redis,
) -> None:
    """Past SLOT_LOAD_MAX entries per slot (the day's items for the whole window) a table is
    replaced by one four times as large holding the old one four times over: the entries
    written before are still found, and only the new table is read."""
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()[0]
    first = item("first", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", first, POLICY), Published)
    small = table_slots(0)  # 209,702 slots: at 0.7 entries per slot by item 525 (x 7 days)
    where = f"{prefix}{today}:where"
    await redis.append(where, await redis.getrange(where, 0, 5) * 524)  # items 2-525: the same
    late = item("late", "\n\n".join(distinct_story(9)))
    assert isinstance(await publish_item(redis, KEYS, "f", late, POLICY), Published)
    assert await listed_tables(redis) == [WindowTable(1, small * 4, None)]
    assert not await redis.exists(f"{prefix}slots:0")
    assert await redis.strlen(f"{prefix}slots:1") == small * 4 * SLOT_BYTES
    for key, story in (("first", STORY), ("late", distinct_story(9))):
        copy = item(f"{key}-copy", copies_of(story, 1)[0], source="Other")
        outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
        assert isinstance(outcome, Discarded) and outcome.duplicate_of == short_hash(key), key


async def test_a_full_table_of_the_largest_size_is_followed_by_another(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table of the largest size (512 MiB; 1 MiB here) counts its items: past SLOT_LOAD_MAX
    entries per slot another one of that size takes the entries, and both are read."""
    monkeypatch.setattr(publish, "TABLE_MAX_BYTES", TABLE_MIN_BYTES)
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()[0]
    first = item("first", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", first, POLICY), Published)
    largest = table_slots(0)
    assert await listed_tables(redis) == [WindowTable(0, largest, None)]
    assert await redis.get(f"{prefix}slots:0:items") == b"1"
    full = int(largest * SLOT_LOAD_MAX / 40)  # 3,669 items: the next one takes it past 0.7
    await redis.set(f"{prefix}slots:0:items", full)
    late = item("late", "\n\n".join(distinct_story(9)))
    assert isinstance(await publish_item(redis, KEYS, "f", late, POLICY), Published)
    tables = [WindowTable(0, largest, today), WindowTable(1, largest, None)]
    assert await listed_tables(redis) == tables
    for key, story in (("first", STORY), ("late", distinct_story(9))):
        copy = item(f"{key}-copy", copies_of(story, 1)[0], source="Other")
        outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
        assert isinstance(outcome, Discarded) and outcome.duplicate_of == short_hash(key), key


async def test_records_past_the_first_chunk_are_found(redis: Redis) -> None:
    """A day's records fill 64 KiB chunks (~220 each): copies of stories stored in the first
    and the second chunk are both found, and point at their own originals."""
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()[0]
    stories: list[list[str]] = []
    chunks: list[int] = []
    while chunks.count(1) < 3:  # until three records sit in the second chunk
        story, k = distinct_story(1000 + len(stories)), len(stories)
        published = await publish_item(redis, KEYS, "f", item(f"s{k}", "\n\n".join(story)), POLICY)
        assert isinstance(published, Published) and k < 400, k
        stories.append(story)
        where = await redis.get(f"{prefix}{today}:where")
        assert where is not None and len(where) == len(stories) * 6
        chunks = [struct.unpack(">HHH", where[i : i + 6])[0] for i in range(0, len(where), 6)]
    assert set(chunks) == {0, 1} and chunks == sorted(chunks)
    assert await redis.strlen(f"{prefix}{today}:docs:1") == RECORD_CHUNK_BYTES
    assert 0 < await redis.ttl(f"{prefix}{today}:docs:1") <= (POLICY.near.window_days + 1) * 86_400

    for k in (3, len(stories) - 2):  # a record in the first chunk, one in the second
        copy = item(f"c{k}", copies_of(stories[k], 1)[0], source="Other")
        outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
        assert isinstance(outcome, Discarded) and outcome.reason == "duplicate_near", k
        assert outcome.duplicate_of == short_hash(f"s{k}")


async def test_a_day_with_every_chunk_full_publishes_unindexed(redis: Redis) -> None:
    """Past 65,536 chunks a day (~14 million items) the chunk number would wrap around onto
    chunk 0: the item is published, as a text too short to fingerprint is, and nothing is
    overwritten."""
    prefix, today = KEYS.dedupe_index(SCHEME), POLICY.near.days()[0]
    where = f"{prefix}{today}:where"
    full = struct.pack(">HHH", 65_535, RECORD_CHUNK_BYTES - 10, 10)  # the last chunk, filled
    await redis.set(where, full)
    story = item("late", "\n\n".join(distinct_story(77)))
    assert isinstance(await publish_item(redis, KEYS, "f", story, POLICY), Published)
    assert await redis.get(where) == full
    assert await redis.exists(f"{prefix}{today}:docs:0") == 0
    copy = item("late-copy", copies_of(distinct_story(77), 1)[0], source="Other")
    assert isinstance(await publish_item(redis, KEYS, "f", copy, POLICY), Published)


async def test_different_story_on_the_same_topic_is_kept(redis: Redis) -> None:
    await publish_item(redis, KEYS, "f", item("o", "\n\n".join(STORY)), POLICY)
    # Same template, other numbers and place: "5th relief plane" vs "6th relief plane".
    other = [
        p.replace("۱۲۰ روستای", "۴۵ روستای")
        .replace("۸۵ کیلومتر", "۱۷ کیلومتر")
        .replace("چهار مخزن", "دو مخزن")
        for p in STORY[:2]
    ] + [
        f"فرماندار شهرستان گفت بهره{ZWNJ}برداری از این بخش با حضور مسئولان استانی و نمایندگان "
        f"مجلس انجام شد و مرحله بعدی از بهار آغاز می{ZWNJ}شود."
    ]
    outcome = await publish_item(redis, KEYS, "f", item("other", "\n\n".join(other)), POLICY)
    assert isinstance(outcome, Published)


async def test_the_fifth_relief_plane_is_not_the_sixth(redis: Redis) -> None:
    """The script vetoes a number changed between the same words of the lead, as the
    reference does (dedupe.numbers_differ), and still finds the right original."""
    fifth = item("fifth", PLANE, source="SPA")
    assert isinstance(await publish_item(redis, KEYS, "f", fifth, POLICY), Published)
    sixth = item("sixth", PLANE.replace("الخامسة", "السادسة"), source="SPA")
    assert isinstance(await publish_item(redis, KEYS, "f", sixth, POLICY), Published)
    copy = item("copy", PLANE.replace("واس - الرياض: ", "الرياض - عكاظ: "), source="Okaz")
    outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == fifth.id


# A congratulation cable: one template, sent to two presidents on two national days.
CABLE = (
    "واس - الرياض: بعث خادم الحرمين الشريفين الملك سلمان بن عبدالعزيز آل سعود برقية تهنئة "
    "لفخامة الرئيس {president} رئيس جمهورية {country} بمناسبة ذكرى استقلال بلاده. وأعرب "
    "الملك المفدى باسمه واسم شعب وحكومة المملكة العربية السعودية عن أطيب التهاني وأصدق "
    "التمنيات بموفور الصحة والسعادة لفخامته ولحكومة وشعب {country} الشقيق اطراد التقدم "
    "والازدهار، مؤكدا حرص المملكة على تعزيز العلاقات الأخوية بين البلدين الشقيقين في شتى "
    "المجالات بما يخدم مصالحهما المشتركة."
)


async def test_a_template_story_to_another_country_is_kept_and_a_copy_joins_with_why(
    redis: Redis,
) -> None:
    """Two cables of one template differ in a slot (the president and the country between
    identical words): both are published. A copy with another attribution joins the first, and
    the duplicates stream and the cluster say what was checked; the withheld item is whole."""
    to_egypt = item("eg", CABLE.format(president="عبدالفتاح السيسي", country="مصر العربية"))
    to_tunisia = item("tn", CABLE.format(president="الباجي قائد السبسي", country="تونس"))
    assert isinstance(await publish_item(redis, KEYS, "f", to_egypt, POLICY), Published)
    assert isinstance(await publish_item(redis, KEYS, "f", to_tunisia, POLICY), Published)

    copy_text = to_egypt.text.replace("واس - الرياض: ", "الرياض - عكاظ: ")
    copy = item("eg-copy", copy_text, source="Okaz")
    outcome = await publish_item(redis, KEYS, "f", copy, POLICY)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == to_egypt.id

    [(_, fields)] = await redis.xrange(KEYS.duplicates_stream)
    record, withheld = json.loads(fields[b"duplicate"]), json.loads(fields[b"item"])
    assert record["reason"] == "near_duplicate" and record["duplicate_of"] == to_egypt.id
    assert record["alignment"].startswith("no template slot differs")
    assert withheld["text"] == copy_text and withheld["id"] == copy.id
    [cluster] = await biggest_clusters(redis, KEYS, 5)
    assert cluster.id == to_egypt.id and [c.id for c in cluster.copies] == [copy.id]
    assert cluster.copies[0].alignment == record["alignment"]


async def test_a_copy_published_between_verify_and_commit_is_verified_too(redis: Redis) -> None:
    """The slot check runs between two calls of the script. A copy another worker publishes
    in between is a new candidate: the next call asks for its verdict instead of deciding, and
    nothing is written until every candidate has one."""
    script = redis.register_script(publish.PUBLISH_ITEM.text)

    async def call(it: Item, verdicts: dict[str, dict[str, object]]) -> list[bytes]:
        fp = fingerprint(it.text, POLICY.near)
        mine = publish.align_record(it.text, it.title, POLICY.near.slots)
        keys_arg = publish.publish_keys(KEYS, "f", it.id, it.content_hash)
        args = publish._publish_args(KEYS, it, fp, mine, POLICY, datetime.now(UTC))
        reply: list[bytes] = await script(
            keys=keys_arg, args=[*args.argv(), json.dumps(verdicts), NO_ROUTES]
        )
        return reply

    original = item("o", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", original, POLICY), Published)
    late_text, racer_text = copies_of(STORY, 2)
    late, racer = item("late", late_text, source="Late"), item("racer", racer_text)
    distinct = {"distinct": True, "why": "differs in slots"}

    today = datetime.now(UTC).strftime("%Y%m%d")
    first = await call(late, {})
    assert first[:2] == [b"verify", f"{today}:1".encode()]  # the original's record
    # Meanwhile another worker publishes a copy it judged another story than the original.
    assert (await call(racer, {f"{today}:1": distinct}))[0] == b"published"

    second = await call(late, {f"{today}:1": distinct})
    assert second[:2] == [b"verify", f"{today}:2".encode()]  # the racer's, not yet checked
    assert await redis.xlen(KEYS.duplicates_stream) == 0  # nothing written by a "verify"
    same = {"distinct": False, "why": "no template slot differs (0 substitution(s))"}
    third = await call(late, {f"{today}:1": distinct, f"{today}:2": same})
    assert third[:2] == [b"duplicate_near", racer.id.encode()]
    assert await redis.xlen(KEYS.output_stream) == 2


async def test_a_worker_with_the_slot_check_off_decides_by_the_sketches(redis: Redis) -> None:
    """Records written with the check on, read by a worker with it off (a rolling change of the
    setting): the script asks, the sketches' verdict stands."""
    original = item("o", "\n\n".join(STORY))
    assert isinstance(await publish_item(redis, KEYS, "f", original, POLICY), Published)
    off = dataclasses.replace(POLICY, near=DedupePolicy(slots=None))
    copy = item("c", copies_of(STORY, 1)[0], source="Other")
    outcome = await publish_item(redis, KEYS, "f", copy, off)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == original.id
    [(_, fields)] = await redis.xrange(KEYS.duplicates_stream)
    assert json.loads(fields[b"duplicate"])["alignment"] == "slot check off"


def test_an_unreadable_slot_record_leaves_the_sketches_verdict() -> None:
    mine = publish.align_record("\n\n".join(STORY), "T")
    verdict = publish._slot_verdict(mine, b"\x05\x00", POLICY.near.slots)
    assert verdict == publish.CandidateVerdict(
        distinct=False, why="the candidate's slot record is unreadable"
    )


B_EXTRA = [
    f"مدیرکل آب و فاضلاب استان نیز گفت عملیات اجرایی این طرح با مشارکت پیمانکاران محلی و "
    f"نظارت مهندسان مشاور انجام می{ZWNJ}شود و گزارش پیشرفت آن هر ماه منتشر خواهد شد.",
    f"به گفته او، در مرحله دوم طرح، شبکه توزیع داخلی روستاها نوسازی می{ZWNJ}شود و "
    f"انشعاب{ZWNJ}های غیرمجاز جمع{ZWNJ}آوری خواهد شد تا هدررفت آب کاهش یابد.",
]


async def test_a_copy_closer_to_a_copy_than_to_the_original_joins_the_cluster(
    redis: Redis,
) -> None:
    """Withheld copies are indexed under the kept item's id: B, a copy of A, and C, close to B
    but not to A, end in A's cluster, as a subscriber expects. Joining through B, C is checked
    against B's record and A's (a cluster must not drift from story to story)."""
    a = item("a", "\n\n".join(STORY))
    b_paragraphs = [*STORY[:3], *B_EXTRA]  # A's first three paragraphs and two more
    b = item("b", "\n\n".join(b_paragraphs), source="B")
    c = item("c", "\n\n".join(b_paragraphs[1:]), source="C")  # B without its lead
    assert isinstance(await publish_item(redis, KEYS, "f", a, POLICY), Published)
    b_outcome = await publish_item(redis, KEYS, "f", b, POLICY)
    assert isinstance(b_outcome, Discarded) and b_outcome.duplicate_of == a.id

    script = redis.register_script(publish.PUBLISH_ITEM.text)
    fp = fingerprint(c.text, POLICY.near)
    mine = publish.align_record(c.text, c.title, POLICY.near.slots)
    args = publish._publish_args(KEYS, c, fp, mine, POLICY, datetime.now(UTC))
    keys_arg = publish.publish_keys(KEYS, "f", c.id, c.content_hash)
    first = await script(keys=keys_arg, args=[*args.argv(), "{}", NO_ROUTES])
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert first[0] == b"verify" and set(first[1::2]) >= {f"{today}:2".encode()}
    assert f"{today}:1".encode() in first[1::2]  # A's record, named by B's: checked too

    c_outcome = await publish_item(redis, KEYS, "f", c, POLICY)
    assert isinstance(c_outcome, Discarded) and c_outcome.duplicate_of == a.id, c_outcome
    [cluster] = await biggest_clusters(redis, KEYS, 5)
    assert cluster.size == 3 and [copy.id for copy in cluster.copies] == [b.id, c.id]


async def test_concurrent_copies_publish_exactly_once(redis_server: Any, redis: Redis) -> None:
    """Workers finishing copies of one story at the same moment: one item, every time."""
    clients = [Redis.from_url(redis_server.url) for _ in range(6)]
    try:
        for round_ in range(40):
            story = distinct_story(round_)
            texts = copies_of(story, 6)
            outcomes = await asyncio.gather(
                *(
                    publish_item(c, KEYS, "f", item(f"r{round_}-{k}", t), POLICY)
                    for k, (c, t) in enumerate(zip(clients, texts, strict=True))
                )
            )
            published = [o for o in outcomes if isinstance(o, Published)]
            assert len(published) == 1, f"round {round_}: {outcomes}"
            kept = published[0].item_id
            assert all(o.duplicate_of == kept for o in outcomes if isinstance(o, Discarded))
    finally:
        for c in clients:
            await c.aclose()
    assert await redis.xlen(KEYS.output_stream) == 40


async def test_three_agencies_one_item_two_duplicates_through_the_pipeline(
    aiohttp_server: Any, redis: Redis, item_schema: dict[str, Any], fixture_path: Path
) -> None:
    folder = PERSIAN / "persian-set-a"
    if not folder.exists():
        pytest.skip(f"{folder} not found: the shared evaluation data lives beside the project")
    seed = read_fixture(fixture_path)
    feeds = [
        DemoFeed(
            path="/ilna/rss.xml",
            format="rss2",
            title="ایلنا",
            site_name="خبرگزاری کار ایران",
            language="fa",
            articles=[seed],
        )
    ]
    for agency, name in (("mehr", "dup_01.txt"), ("isna", "dup_02.txt")):
        copy = dataclasses.replace(read_fixture(folder / name), slug=f"{agency}-kursk")
        feeds.append(
            DemoFeed(
                path=f"/{agency}/rss.xml",
                format="rss2",
                title=agency,
                site_name=agency.upper(),
                language="fa",
                articles=[copy],
            )
        )
    other = dataclasses.replace(read_fixture(folder / "distinct_02.txt"), slug="nis-estimate")
    feeds[0].articles.append(other)
    _site, server = await serve(aiohttp_server, feeds)
    await add_feeds(redis, *(url(server, f.path) for f in feeds))

    async def settled() -> bool:
        return await redis.xlen(KEYS.duplicates_stream) >= 2

    await wait_for(settled, what="two duplicates")
    items = await wait_for_items(redis, 2, url(server, "/"))
    titles = {i["title"] for i in items}
    assert other.title in titles and len(items) == 2
    [kept] = [i for i in items if i["title"] != other.title]
    validate(kept, item_schema)
    duplicates = [
        json.loads(f[b"duplicate"]) for _i, f in await redis.xrange(KEYS.duplicates_stream)
    ]
    assert {d["duplicate_of"] for d in duplicates} == {kept["id"]}
    assert all(d["similarity"]["containment"] >= 0.7 for d in duplicates)
    [cluster] = await biggest_clusters(redis, KEYS, 5)
    assert cluster.id == kept["id"] and cluster.size == 3
    assert set(cluster.sources) == {"خبرگزاری کار ایران", "MEHR", "ISNA"}
    assert len(await stream_items(redis)) == 2
