"""A poll's record as feed-hash fields (registry.poll_record_fields) reads back as FeedState
(registry.feed_state_from_hash): the one encoding of feed state, both ways."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.models import PollRecord
from pipeline.registry import feed_state_from_hash, poll_record_fields

TEXT = st.text(min_size=1, max_size=40)
TIME = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def test_unset_fields_are_not_written_and_none_clears() -> None:
    assert poll_record_fields(PollRecord()) == {}
    fields = poll_record_fields(PollRecord(errors=0, last_error=None, last_poll=12.25))
    assert fields == {"errors": "0", "last_error": "", "last_poll": "12.25"}


@given(
    last_poll=TIME,
    errors=st.integers(min_value=0, max_value=10**6),
    last_error=st.none() | TEXT,
    etag=st.none() | TEXT,
    rate=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    redirect_seen=st.integers(min_value=0, max_value=100),
)
def test_a_record_reads_back_as_written(
    last_poll: float,
    errors: int,
    last_error: str | None,
    etag: str | None,
    rate: float | None,
    redirect_seen: int,
) -> None:
    record = PollRecord(
        last_poll=last_poll,
        errors=errors,
        last_error=last_error,
        etag=etag,
        rate=rate,
        redirect_seen=redirect_seen,
    )
    stored = {"id": "f", "url": "https://example.org/rss", **poll_record_fields(record)}
    state = feed_state_from_hash(stored)
    assert (state.last_poll, state.errors, state.rate) == (last_poll, errors, rate)
    assert state.redirect_seen == redirect_seen
    # The hash stores "" for a cleared text field: it reads back as None.
    assert state.last_error == (last_error or None)
    assert state.etag == (etag or None)
