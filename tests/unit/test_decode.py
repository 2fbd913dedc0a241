"""pipeline/decode.py: every way a feed's charset goes wrong, proven through feedparser.

Each case decodes a small RSS 2.0 document and then hands the result to feedparser with a UTF-8
Content-Type, as the pipeline does: the entry title must come out right and the strict (expat)
parser must not have given up (``bozo``).
"""

from __future__ import annotations

import codecs
from typing import Any

import feedparser
import pytest

from pipeline.decode import DecodedBody, codec_for_label, decode_xml_body

ZWNJ = "\u200c"
ZWJ = "\u200d"
UTF8_HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}

# Sample news texts written for these tests (2-4 sentences, as real items are).
PERSIAN = (
    f"به گزارش خبرنگار ما، پل تازه{ZWNJ}ساز چمران روز پنج{ZWNJ}شنبه به روی خودروها باز می{ZWNJ}شود. "
    f"مدیر پروژه گفت بارش ژاله و برف، کار گروه{ZWNJ}های پیمانکار را چند هفته عقب انداخت. "
    f"شهرداری پیش{ZWNJ}بینی می{ZWNJ}کند ترافیک بزرگراه گیشا تا یک سوم کمتر شود."
)
# windows-1256 has no Persian yeh (U+06CC): Persian feeds in it spell yeh with the Arabic one
# (U+064A). Unifying the two is pipeline.normalize's job, not the decoder's.
PERSIAN_1256 = PERSIAN.replace("ی", "ي")
ARABIC = (
    "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في مدينة الإسكندرية بسعة مئتي سرير. "
    "وقال الوزير في مؤتمر صحفي إن المستشفى سيخدم أكثر من نصف مليون مواطن في المنطقة. "
    "ومن المتوقع أن يبدأ استقبال المرضى مطلع الشهر المقبل بعد اكتمال تجهيز الأقسام."
)
RUSSIAN = (
    "Министерство транспорта сообщило во вторник о запуске новой линии метро в Москве. "
    "По словам чиновников, строительство заняло почти четыре года и обошлось дешевле плана. "
    "Первые поезда начнут ходить уже в следующем месяце."
)
ENGLISH = (
    "The city council approved the new tram line on Tuesday. Construction starts in spring "
    "and the first trams should run within three years."
)


def title_of(text: str) -> str:
    return text.split(". ", maxsplit=1)[0]


def rss(text: str, prolog: str = "") -> str:
    """A one-item RSS 2.0 document: the first sentence is the title, the text the description."""
    return (
        f'{prolog}<rss version="2.0"><channel><title>Sample agency</title>'
        f"<link>https://agency.example/</link><description>News</description>"
        f"<item><title>{title_of(text)}</title><link>https://agency.example/news/1</link>"
        f"<description>{text}</description></item></channel></rss>"
    )


def prolog(encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>\n'


def parse(decoded: DecodedBody) -> Any:
    parsed = feedparser.parse(decoded.text_bytes, response_headers=UTF8_HEADERS)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


CASES = [
    # id, body, http_charset, expected text, expected encoding, guessed
    (
        "cp1256-fa-undeclared",
        rss(PERSIAN_1256).encode("cp1256"),
        None,
        PERSIAN_1256,
        "cp1256",
        True,
    ),
    ("cp1256-ar-undeclared", rss(ARABIC).encode("cp1256"), None, ARABIC, "cp1256", True),
    (
        "cp1256-fa-prolog",
        rss(PERSIAN_1256, prolog("windows-1256")).encode("cp1256"),
        None,
        PERSIAN_1256,
        "cp1256",
        False,
    ),
    (
        "cp1251-ru-prolog-only",
        rss(RUSSIAN, prolog("windows-1251")).encode("cp1251"),
        None,
        RUSSIAN,
        "cp1251",
        False,
    ),
    (
        "utf8-bom",
        codecs.BOM_UTF8 + rss(PERSIAN, prolog("UTF-8")).encode("utf-8"),
        None,
        PERSIAN,
        "utf-8",
        False,
    ),
    (
        "utf16-bom",
        rss(PERSIAN, prolog("UTF-16")).encode("utf-16"),  # Python's utf-16 writes a BOM
        None,
        PERSIAN,
        "utf-16-le",
        False,
    ),
    ("utf8-labelled-latin1", rss(PERSIAN).encode("utf-8"), "iso-8859-1", PERSIAN, "utf-8", True),
    ("utf8-ar-labelled-latin1", rss(ARABIC).encode("utf-8"), "ISO-8859-1", ARABIC, "utf-8", True),
    (
        "cp1256-labelled-utf8",
        rss(PERSIAN_1256).encode("cp1256"),
        "utf-8",
        PERSIAN_1256,
        "cp1256",
        True,
    ),
    ("cp1256-ar-labelled-utf8", rss(ARABIC).encode("cp1256"), "utf-8", ARABIC, "cp1256", True),
    ("ascii", rss(ENGLISH, prolog("us-ascii")).encode("ascii"), None, ENGLISH, "utf-8", False),
]


@pytest.mark.parametrize(
    ("body", "http_charset", "text", "encoding", "guessed"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decodes_and_feedparser_reads_the_title(
    body: bytes, http_charset: str | None, text: str, encoding: str, guessed: bool
) -> None:
    decoded = decode_xml_body(body, http_charset)

    assert (decoded.encoding, decoded.guessed) == (encoding, guessed)
    document = decoded.text_bytes.decode("utf-8")  # strict: it really is UTF-8
    assert f"<description>{text}</description>" in document
    assert parse(decoded).entries[0].title == title_of(text)


def test_declaration_is_relabelled_as_utf8_and_only_there() -> None:
    body = (
        prolog("windows-1256") + rss(f"{PERSIAN_1256} encoding=&quot;windows-1256&quot;")
    ).encode("cp1256")

    document = decode_xml_body(body, None).text_bytes.decode("utf-8")

    assert document.startswith('<?xml version="1.0" encoding="utf-8"?>\n<rss')
    assert "encoding=&quot;windows-1256&quot;" in document  # the text itself is left alone


def test_utf16_declaration_is_relabelled() -> None:
    decoded = decode_xml_body(rss(ARABIC, prolog("UTF-16")).encode("utf-16-be"), None)

    assert decoded.text_bytes.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert decoded.encoding == "utf-16-be"  # no BOM: recognized from the wide "<?"
    assert parse(decoded).entries[0].title == title_of(ARABIC)


def test_empty_body() -> None:
    assert decode_xml_body(b"", "windows-1256") == DecodedBody(b"", "utf-8", False)


def test_control_characters_are_removed_so_expat_does_not_abort() -> None:
    dirty = "Tram\x00 line\x08 approved\x0b by\x0c the\x1f council. Tab\tand\r\nnewlines stay."
    decoded = decode_xml_body(rss(dirty, prolog("utf-8")).encode("utf-8"), "utf-8")

    document = decoded.text_bytes.decode("utf-8")
    assert "Tram line approved by the council. Tab\tand\r\nnewlines stay." in document
    assert parse(decoded).entries[0].title == "Tram line approved by the council"


def test_zwnj_and_zwj_survive() -> None:
    text = f"{PERSIAN} ZWJ{ZWJ}kept\x01."
    for body in (rss(text).encode("utf-8"), rss(text.replace("ی", "ي")).encode("cp1256")):
        decoded = decode_xml_body(body, None)

        document = decoded.text_bytes.decode("utf-8")
        assert f"ZWJ{ZWJ}kept." in document
        entry = parse(decoded).entries[0]
        assert "می\u200cشود" in entry.title.replace("ي", "ی")
        assert entry.summary.count(ZWNJ) == PERSIAN.count(ZWNJ) == 6


def test_latin1_label_means_windows_1252() -> None:
    text = "The \u201cquiet\u201d tram \u2013 approved. It opens next year."
    decoded = decode_xml_body(rss(text).encode("cp1252"), "iso-8859-1")

    assert (decoded.encoding, decoded.guessed) == ("cp1252", False)
    assert parse(decoded).entries[0].title == "The \u201cquiet\u201d tram \u2013 approved"


def test_latin1_label_on_persian_windows_1256_falls_through_to_detection() -> None:
    # پ, چ, گ and ZWNJ are 0x81, 0x8D, 0x90, 0x9D in windows-1256: undefined in windows-1252,
    # so the strict decode of the lying label fails and detection takes over.
    decoded = decode_xml_body(rss(PERSIAN_1256).encode("cp1256"), "ISO-8859-1")

    assert (decoded.encoding, decoded.guessed) == ("cp1256", True)
    assert parse(decoded).entries[0].title == title_of(PERSIAN_1256)


@pytest.mark.parametrize(
    "label", ["x-no-such-charset", "utf-7", "unicode_escape", "rot13", "utf-16"]
)
def test_labels_that_cannot_be_trusted_are_ignored(label: str) -> None:
    decoded = decode_xml_body(rss(RUSSIAN, prolog(label)).encode("cp1251"), label)

    assert (decoded.encoding, decoded.guessed) == ("cp1251", True)
    assert parse(decoded).entries[0].title == title_of(RUSSIAN)


def test_mixed_persian_and_arabic_feed_in_windows_1256() -> None:
    # A realistic multi-item feed: ZWNJ-rich Persian items next to Arabic ones. (charset-normalizer
    # alone calls the one-item Persian documents above mac_cyrillic: it counts ZWNJ as
    # unprintable; pipeline.decode._guess has the details.)
    more = [
        f"سازمان هواشناسی از بارش برف در استان{ZWNJ}های شمالی خبر داد. دمای هوا در ارتفاعات "
        f"کاهش می{ZWNJ}یابد.",
        f"نمایشگاه بین{ZWNJ}المللی کتاب با حضور ناشران داخلی و خارجی گشایش یافت. امسال بیش از "
        f"دو هزار ناشر شرکت کرده{ZWNJ}اند.",
        f"قیمت طلا پس از چند روز افزایش، کاهش پیدا کرد. پیش{ZWNJ}بینی می{ZWNJ}شود این روند "
        f"ادامه داشته باشد.",
    ]
    texts = [t.replace("ی", "ي") for t in [PERSIAN, *more]] + [ARABIC] * 3
    items = "".join(
        f"<item><title>{title_of(t)}</title><description>{t}</description></item>" for t in texts
    )
    body = f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode("cp1256")

    decoded = decode_xml_body(body, None)

    assert (decoded.encoding, decoded.guessed) == ("cp1256", True)
    assert [e.title for e in parse(decoded).entries] == [title_of(t) for t in texts]


def test_undetectable_bytes_fall_back_to_utf8_with_replacement() -> None:
    body = b'<rss version="2.0"><channel><title>x</title><item><title>a\xff\xfe\x00\x81b'
    body += b"</title></item></channel></rss>"

    decoded = decode_xml_body(body, "utf-8")

    decoded.text_bytes.decode("utf-8")  # always valid UTF-8, whatever came in
    assert b"\x00" not in decoded.text_bytes
    assert decoded.guessed


# --- UTF-8 with a stray byte: trusted, not re-detected (issue "hostile input", point 7) -------

FRENCH = (
    "Le conseil municipal a approuvé mardi la nouvelle ligne de tramway qui reliera la gare à "
    "l'hôpital. Les travaux débuteront au printemps et les premières rames circuleront d'ici "
    "trois ans. Selon la maire, « ce projet très attendu » réduira d'un tiers la circulation."
)
SPANISH = (
    "El ayuntamiento aprobó el martes la nueva línea de tranvía que unirá la estación con el "
    "hospital. Las obras comenzarán en primavera y los primeros trenes circularán dentro de tres "
    "años. Según la alcaldesa, el proyecto reducirá un tercio el tráfico de la avenida."
)
GERMAN = (
    "Der Stadtrat hat am Dienstag die neue Straßenbahnlinie zwischen Bahnhof und Klinikum "
    "genehmigt. Die Bauarbeiten beginnen im Frühjahr, die ersten Züge sollen in drei Jahren über "
    "die Brücke fahren. Laut Bürgermeisterin geht der Verkehr um ein Drittel zurück."
)
URDU = (
    "وزیر اعظم نے منگل کو شہر کی نئی ٹرام لائن کی منظوری دے دی۔ تعمیراتی کام موسمِ بہار میں "
    "شروع ہوگا اور پہلی گاڑیاں تین سال میں چلیں گی۔ میئر کے مطابق بڑی شاہراہ پر ٹریفک ایک تہائی "
    "کم ہو جائے گا۔"
)
STRAY = "\ue000"  # where the stray byte goes: a private-use character no sample text contains


def feed_with_stray(text: str, stray_item: str, size: int, prolog_text: str = "") -> str:
    """An RSS document of about ``size`` UTF-8 bytes: items of ``text``, ``stray_item`` halfway."""
    item = f"<item><title>{title_of(text)}</title><description>{text}</description></item>"
    count = max(2, size // len(item.encode("utf-8")))
    items = [item] * count
    items.insert(count // 2, f"<item><title>{stray_item}</title></item>")
    return (
        f'{prolog_text}<rss version="2.0"><channel><title>Sample agency</title>'
        f"{''.join(items)}</channel></rss>"
    )


STRAY_CASES = [
    # id, text, the item with the stray byte in it, the stray byte
    ("fr-e9", FRENCH, f"Réunion au caf{STRAY} du théâtre", b"\xe9"),
    ("es-e9", SPANISH, f"Entrevista con Jos{STRAY} García", b"\xe9"),
    ("de-fc", GERMAN, f"Neue Linie in M{STRAY}nchen eröffnet", b"\xfc"),
    # A summary cut at a byte limit in the middle of a two-byte letter, then "...".
    ("fa-cut", PERSIAN, f"پیش{ZWNJ}بینی هوای تهران{STRAY}...", b"\xd9"),
    ("ar-e9", ARABIC, f"افتتاح مستشفى{STRAY} جديد", b"\xe9"),
    ("ur-fc", URDU, f"نئی ٹرام لائن{STRAY} کی منظوری", b"\xfc"),
]


@pytest.mark.parametrize("size", [2_000, 8_000, 18_000])
@pytest.mark.parametrize(
    ("text", "stray_item", "stray"),
    [case[1:] for case in STRAY_CASES],
    ids=[case[0] for case in STRAY_CASES],
)
@pytest.mark.parametrize(
    ("in_prolog", "http_charset"),
    [(True, None), (False, "utf-8"), (True, "UTF-8"), (True, "iso-8859-1")],
    ids=["prolog", "header", "both", "prolog-vs-server-default"],
)
def test_utf8_with_one_stray_byte_stays_utf8(
    text: str, stray_item: str, stray: bytes, size: int, in_prolog: bool, http_charset: str | None
) -> None:
    document = feed_with_stray(text, stray_item, size, prolog("utf-8") if in_prolog else "")
    body = document.encode("utf-8").replace(STRAY.encode("utf-8"), stray)
    assert abs(len(body) - size) < 1_000 and body.count(stray) >= 1

    decoded = decode_xml_body(body, http_charset)

    # Only the stray byte is lost; every accent, letter and ZWNJ survives.
    assert decoded.text_bytes.decode("utf-8") == document.replace(STRAY, "\ufffd")
    assert decoded.encoding == "utf-8"
    assert decoded.guessed is (http_charset == "iso-8859-1")  # a header label was overruled
    entries = parse(decoded).entries
    assert entries[0].title == title_of(text)
    assert stray_item.replace(STRAY, "\ufffd") in [entry.title for entry in entries]


def test_stray_bytes_in_persian_keep_every_zwnj() -> None:
    document = feed_with_stray(PERSIAN, f"می{ZWNJ}شود{STRAY}", 18_000, prolog("utf-8"))
    body = document.encode("utf-8").replace(STRAY.encode("utf-8"), b"\xe9\xd9")

    text = decode_xml_body(body, "utf-8").text_bytes.decode("utf-8")

    assert text.count(ZWNJ) == document.count(ZWNJ) > 100
    assert text.count("\ufffd") == 2


def test_stray_byte_threshold() -> None:
    from pipeline.decode import _utf8_with_stray_bytes

    def body(valid: int, stray: int) -> bytes:
        return ("é " * valid).encode("utf-8") + b"caf\xe9 " * stray

    # Small feeds: up to 3 stray sequences, each outnumbered ten to one by valid characters.
    assert _utf8_with_stray_bytes(body(10, 1)) is not None
    assert _utf8_with_stray_bytes(body(9, 1)) is None
    assert _utf8_with_stray_bytes(body(30, 3)) is not None
    assert _utf8_with_stray_bytes(body(29, 3)) is None
    # Bigger ones: at most one stray sequence per 100 valid characters.
    assert _utf8_with_stray_bytes(body(399, 4)) is None
    assert _utf8_with_stray_bytes(body(400, 4)) is not None
    assert _utf8_with_stray_bytes(body(5_000, 50)) is not None
    assert _utf8_with_stray_bytes(body(5_000, 51)) is None
    # A cut-off three-byte character is one stray sequence, not two stray bytes; a U+FFFD the
    # feed itself contains is a valid character, not a stray.
    assert _utf8_with_stray_bytes(("€ " * 10).encode("utf-8") + b"\xe2\x82 x") is not None
    assert _utf8_with_stray_bytes(("\ufffd " * 10).encode("utf-8") + b"\xe9") is not None
    assert _utf8_with_stray_bytes(b"\xe9 " + ("\ufffd " * 9).encode("utf-8")) is None


def test_multi_item_windows_1256_declared_utf8_everywhere_is_still_detected() -> None:
    texts = [PERSIAN_1256, ARABIC, PERSIAN_1256.replace("پل", "جاده"), ARABIC]
    items = "".join(
        f"<item><title>{title_of(t)}</title><description>{t}</description></item>" for t in texts
    )
    document = rss_document(items, prolog("UTF-8"))

    decoded = decode_xml_body(document.encode("cp1256"), "utf-8")

    assert (decoded.encoding, decoded.guessed) == ("cp1256", True)
    assert [e.title for e in parse(decoded).entries] == [title_of(t) for t in texts]
    assert decoded.text_bytes.decode("utf-8").count(ZWNJ) == document.count(ZWNJ) == 18


def test_windows_1252_declared_utf8_is_not_taken_for_utf8_with_strays() -> None:
    # Every accent is invalid UTF-8: the declaration is wrong, not the bytes.
    body = rss(FRENCH, prolog("utf-8")).encode("cp1252")

    decoded = decode_xml_body(body, "utf-8")

    assert decoded.guessed and decoded.encoding != "utf-8"
    assert parse(decoded).entries[0].title == title_of(FRENCH)


def rss_document(items: str, prolog_text: str = "") -> str:
    return (
        f'{prolog_text}<rss version="2.0"><channel><title>Sample agency</title>{items}'
        f"</channel></rss>"
    )


# --- Labels read as browsers read them (WHATWG Encoding Standard) ---------------------------

CHINESE_GBK = "前总理朱镕基今日出席新电车线路通车仪式。工程历时三年，全长二十公里。"  # 镕: GBK only
KOREAN_CP949 = "똠방각하 시의회는 화요일 새 노면전차 노선을 승인했다. 공사는 봄에 시작된다."  # 똠
JAPANESE_CP932 = "①新路線、市議会が承認。工事は春に始まり、最初の電車は三年以内に走る。"  # ①: NEC
CANTONESE_HKSCS = "市議會啱啱通過咗新電車線。工程嚟緊春天開始，三年內就有車坐。"  # 咗, 嚟: HKSCS
QUOTED_1252 = "The \u201cquiet\u201d tram \u2013 approved. It opens next year."
TURKISH_1254 = "Belediye \u201cyeni\u201d tramvay hattını onayladı. Çalışmalar ilkbaharda başlıyor."
THAI_874 = "สภาเมืองอนุมัติ\u201cรถราง\u201dสายใหม่. การก่อสร้างจะเริ่มในฤดูใบไม้ผลิ…"
JAPANESE = "市議会が新路線を承認. 工事は春に始まり、最初の電車は三年以内に走る。"

LABEL_CASES = [
    # id, declared label, text, the codec the bytes really are in, the codec browsers use,
    # whether Python's own codec of that name misreads the sample (None: Python lacks the label)
    ("gb2312", "gb2312", CHINESE_GBK, "gbk", "gb18030", True),
    ("gbk", "GBK", CHINESE_GBK, "gbk", "gb18030", False),
    ("x-gbk", "x-gbk", CHINESE_GBK, "gbk", "gb18030", None),
    ("euc-kr", "EUC-KR", KOREAN_CP949, "cp949", "cp949", True),
    ("ks_c_5601-1987", "ks_c_5601-1987", KOREAN_CP949, "cp949", "cp949", True),
    ("shift_jis", "Shift_JIS", JAPANESE_CP932, "cp932", "cp932", True),
    ("sjis", "sjis", JAPANESE_CP932, "cp932", "cp932", True),
    ("ms_kanji", "ms_kanji", JAPANESE_CP932, "cp932", "cp932", False),
    ("big5", "big5", CANTONESE_HKSCS, "big5hkscs", "big5hkscs", True),
    ("iso-8859-1", "ISO-8859-1", QUOTED_1252, "cp1252", "cp1252", True),
    ("latin1", "latin1", QUOTED_1252, "cp1252", "cp1252", True),
    ("ascii", "ascii", QUOTED_1252, "cp1252", "cp1252", True),
    ("us-ascii", "US-ASCII", QUOTED_1252, "cp1252", "cp1252", True),
    ("iso-8859-9", "ISO-8859-9", TURKISH_1254, "cp1254", "cp1254", True),
    ("tis-620", "TIS-620", THAI_874, "cp874", "cp874", True),
    ("iso-8859-11", "iso-8859-11", THAI_874, "cp874", "cp874", True),
    ("euc-jp", "EUC-JP", JAPANESE, "euc_jp", "euc_jp", False),
]


@pytest.mark.parametrize(
    ("label", "text", "real_codec", "codec", "python_misreads"),
    [case[1:] for case in LABEL_CASES],
    ids=[case[0] for case in LABEL_CASES],
)
@pytest.mark.parametrize("where", ["prolog", "header"])
def test_legacy_labels_decode_as_in_browsers(
    label: str,
    text: str,
    real_codec: str,
    codec: str,
    python_misreads: bool | None,
    where: str,
) -> None:
    body = rss(text, prolog(label) if where == "prolog" else "").encode(real_codec)
    if python_misreads is not None:
        python_reading = body.decode(label, "replace")
        assert (python_reading != rss(text, prolog(label) if where == "prolog" else "")) is (
            python_misreads
        )

    decoded = decode_xml_body(body, label if where == "header" else None)

    assert (decoded.encoding, decoded.guessed) == (codec, False)
    assert f"<description>{text}</description>" in decoded.text_bytes.decode("utf-8")
    assert parse(decoded).entries[0].title == title_of(text)


def test_big5_label_reads_hkscs_characters() -> None:
    # Python's big5 reads the HKSCS bytes as other (private-use or wrong) characters, or fails.
    body = rss(CANTONESE_HKSCS).encode("big5hkscs")
    assert body.decode("big5", "replace") != rss(CANTONESE_HKSCS)

    assert parse(decode_xml_body(body, "big5")).entries[0].title == title_of(CANTONESE_HKSCS)


def test_iso_8859_1_smart_quotes_are_real_quotes() -> None:
    body = b'<rss version="2.0"><channel><title>x</title><item><title>\x93Quiet\x94 tram'
    body += b"</title></item></channel></rss>"

    decoded = decode_xml_body(body, "iso-8859-1")

    assert parse(decoded).entries[0].title == "\u201cQuiet\u201d tram"


def test_iso_2022_jp_is_not_taken_for_ascii() -> None:
    # All 7-bit, so valid UTF-8 too: the declared label must win over "it decodes as UTF-8".
    body = rss(JAPANESE, prolog("ISO-2022-JP")).encode("iso2022_jp")
    assert body.isascii()

    decoded = decode_xml_body(body, None)

    assert (decoded.encoding, decoded.guessed) == ("iso2022_jp", False)
    assert parse(decoded).entries[0].title == title_of(JAPANESE)


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("gb2312", "gb18030"),
        ("chinese", "gb18030"),
        ("GB18030", "gb18030"),
        ("euc-kr", "cp949"),
        ("windows-949", "cp949"),
        ("ks_c_5601-1987", "cp949"),
        ("shift_jis", "cp932"),
        ("windows-31j", "cp932"),
        ("x-sjis", "cp932"),
        ("big5", "big5hkscs"),
        ("x-x-big5", "big5hkscs"),
        ("iso-8859-1", "cp1252"),
        ("ISO_8859-1:1987", "cp1252"),
        ("latin_1", "cp1252"),  # Python's spelling: mapped like the WHATWG one
        ("us-ascii", "cp1252"),
        ("646", "cp1252"),
        ("iso-8859-9", "cp1254"),
        ("latin5", "cp1254"),
        ("tis-620", "cp874"),
        ("iso-8859-11", "cp874"),
        ("euc-jp", "euc_jp"),
        ("iso-8859-8-i", "iso8859-8"),
        ("iso-8859-15", "iso8859-15"),
        ("koi8-ru", "koi8-u"),
        ("x-mac-ukrainian", "mac-cyrillic"),
        ("mac", "mac-roman"),
        ("windows-1256", "cp1256"),
        ("unicode-1-1-utf-8", "utf-8"),
        (' "UTF8" ', "utf-8"),
        ("IBM037", "cp037"),  # not a WHATWG label, but a Python codec: EBCDIC feeds need it
        ("hz-gb-2312", None),  # WHATWG "replacement"
        ("iso-2022-kr", None),
        ("utf-7", None),
        ("utf-16", None),
        ("x-user-defined", None),
        ("rot13", "rot-13"),  # resolved, then refused by the decode itself (not a text codec)
        ("utf-8\x00", None),
        ("x\ud800", None),
        ("a" * 100, None),
        ("", None),
        (None, None),
    ],
)
def test_codec_for_label(label: str | None, codec: str | None) -> None:
    assert codec_for_label(label) == codec


def test_every_whatwg_codec_is_a_python_text_codec() -> None:
    from pipeline.decode import _WHATWG_LABELS

    assert len(_WHATWG_LABELS) > 200
    for label, codec in _WHATWG_LABELS.items():
        assert codec_for_label(label.upper()) == codec
        assert b"<rss>".decode(codec) == "<rss>"


# --- EBCDIC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "codec", "text"),
    [
        ("IBM037", "cp037", FRENCH),
        ("ebcdic-cp-us", "cp037", GERMAN),
        ("IBM500", "cp500", "Vote [final]! Résultat: 52 % pour | 48 % contre. Fin."),
        ("IBM1140", "cp1140", "Le billet coûte 2 € [tarif réduit]. Il est valable un an."),
        ("cp1026", "cp1026", "Belediye yeni tramvay hattını onayladı. Çalışmalar başlıyor."),
    ],
)
def test_ebcdic_feed_is_read_in_its_declared_code_page(label: str, codec: str, text: str) -> None:
    body = rss(text, prolog(label)).encode(codec)
    assert body.startswith(b"\x4c\x6f\xa7\x94")  # "<?xm" in EBCDIC

    decoded = decode_xml_body(body, "utf-8")  # a server default: EBCDIC bytes overrule it

    assert (decoded.encoding, decoded.guessed) == (codec, False)
    document = decoded.text_bytes.decode("utf-8")
    assert document.startswith('<?xml version="1.0" encoding="utf-8"?>\n<rss')
    assert f"<description>{text}</description>" in document
    assert parse(decoded).entries[0].title == title_of(text)


@pytest.mark.parametrize(
    "declaration", ['<?xml version="1.0"?>', prolog("IBM-1047"), prolog("utf-8")]
)
def test_ebcdic_feed_without_a_usable_declaration_is_read_as_cp037(declaration: str) -> None:
    decoded = decode_xml_body(rss(FRENCH, declaration).encode("cp037"), None)

    assert (decoded.encoding, decoded.guessed) == ("cp037", True)
    assert parse(decoded).entries[0].title == title_of(FRENCH)
