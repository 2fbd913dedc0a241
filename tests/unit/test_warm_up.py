"""The extract worker's main process loads extraction before it forks its pool processes."""

from __future__ import annotations

import multiprocessing

from pipeline import extract_stage, language
from pipeline.article_text import ExtractionPolicy, extract_article
from pipeline.language import LanguagePolicy
from pipeline.models import Entry


def _model_loaded(result: multiprocessing.SimpleQueue[int]) -> None:
    result.put(language._model.cache_info().currsize)


def test_a_process_forked_after_the_warm_up_has_the_language_model_already() -> None:
    language._model.cache_clear()
    extract_stage.warm_up(ExtractionPolicy.create(200), LanguagePolicy())
    assert language._model.cache_info().currsize == 1

    fork = multiprocessing.get_context("fork")  # as Celery's prefork pool starts its processes
    result: multiprocessing.SimpleQueue[int] = fork.SimpleQueue()
    child = fork.Process(target=_model_loaded, args=(result,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert result.get() == 1  # loaded before any call in the child


def test_the_warm_up_page_is_extracted_from_the_page_not_the_feed() -> None:
    entry = Entry(identity="warm-up", title="feedpipe")
    article = extract_article(
        extract_stage.WARM_UP_PAGE, "utf-8", entry, ExtractionPolicy.create(200)
    )
    assert article.extraction == "trafilatura" and "Paragraph 7 of a news story" in article.text
