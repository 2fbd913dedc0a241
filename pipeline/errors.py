"""feedpipe's exception hierarchy.

    FeedpipeError
    ├── ConfigError                 bad settings or feeds file; fix and restart
    ├── PublishContention           the publish script kept meeting new candidates; retried
    ├── QueueUnavailable            the task broker refused a job (its Redis is down)
    ├── MalformedJob                an extract message that is no job of this version; set aside
    └── FeedError (feed_url)        something went wrong with one feed or one of its pages
        ├── TransientError          worth retrying later: timeouts, 5xx, 429, connection resets
        │   ├── FetchTimeout
        │   ├── NetworkError        no usable HTTP answer: connection failed or reset, a body cut
        │   │                       short, a response that is not HTTP
        │   ├── ServerError*        HTTP 5xx or 429; may carry the server's Retry-After
        │   ├── HostBusy            no politeness slot for the host within the poll's budget
        │   └── UnexpectedError     anything unforeseen (a bug, a parser crash); logged in full
        └── PermanentError          retrying soon will not help (still retried, at the backoff cap)
            ├── ClientError*        HTTP 4xx other than 429
            ├── BlockedDestination  SSRF guard: not http(s), or a private/loopback/... address
            ├── RedirectError       too many redirects, a loop, a redirect without Location
            ├── TLSError            certificate or handshake failure (never retried unverified)
            ├── ResponseTooLarge    past the feed or page size cap (counted decompressed)
            ├── BadEncoding         a stored page whose Content-Encoding cannot be undone
            ├── DisallowedByRobots  an article page robots.txt disallows (or was unreachable for)
            └── NotAFeed            empty, HTML, image, JSON that is not a JSON Feed, garbage

    * also an HTTPStatusError (FeedError): the server answered, with ``status``.

Which aiohttp and OS exceptions become which error: ``pipeline.fetch.EXCEPTION_MAP``. Every
FeedError is retried at the feed's next poll (``schedule.SchedulePolicy.next_poll_after_error``:
backoff, Retry-After); the two branches say whether retrying soon can help.

A discarded entry or item (duplicate, too short) is *not* an exception: it is a value with a
reason (see ``pipeline.models.Discarded``).
"""

from __future__ import annotations


class FeedpipeError(Exception):
    """Base of every error feedpipe raises on purpose."""


class ConfigError(FeedpipeError):
    """Invalid configuration: a setting, a feeds file, a missing binary."""


class PublishContention(FeedpipeError):
    """The publish script kept finding new candidates to verify (other workers publishing
    copies of the same story faster than this one could check them); the task is retried."""


class QueueUnavailable(FeedpipeError):
    """The task broker could not take an extract job (its Redis is down). Like Redis itself
    being gone, it ends the whole poll task, to be retried: the job waits in the ledger
    (pipeline/redeliver.py), whose sweep sends it again; it is not the feed's failure."""


class MalformedJob(FeedpipeError):
    """An extract task's message that is not an ExtractJob this version can run (another
    version's layout, a damaged or forged message). It goes to the dead-letter stream as it
    came and is not retried: no later attempt could read it either."""


class FeedError(FeedpipeError):
    """An error tied to one feed. ``url`` is the request that failed (feed or article page)."""

    def __init__(self, feed_url: str, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.feed_url = feed_url
        self.url = url or feed_url
        self.message = message

    def __str__(self) -> str:
        where = self.feed_url if self.url == self.feed_url else f"{self.url} (feed {self.feed_url})"
        return f"{where}: {self.message}"

    @property
    def reason(self) -> str:
        """Short machine-readable kind, stored on the feed as ``last_error``'s prefix."""
        return type(self).__name__


class HTTPStatusError(FeedError):
    """The server answered with an error status (``status``): 4xx or 5xx."""

    def __init__(self, feed_url: str, message: str, *, url: str | None = None, status: int) -> None:
        super().__init__(feed_url, message, url=url)
        self.status = status


class TransientError(FeedError):
    """Retrying later may work."""


class FetchTimeout(TransientError):
    pass


class NetworkError(TransientError):
    """No usable HTTP answer: the connection failed or was reset, the body was cut short, or
    what came back was not HTTP."""


class ServerError(TransientError, HTTPStatusError):
    """HTTP 5xx or 429."""

    def __init__(
        self,
        feed_url: str,
        message: str,
        *,
        url: str | None = None,
        status: int,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(feed_url, message, url=url, status=status)
        self.retry_after = retry_after  # seconds, from a 429/503 Retry-After header


class HostBusy(TransientError):
    """The host's politeness limits left no slot before the poll's budget ran out.

    Not the feed's fault: the scheduler retries soon and does not count it as an error."""


class UnexpectedError(TransientError):
    """An exception nobody anticipated while polling one feed, recorded on that feed."""


class PermanentError(FeedError):
    """Retrying soon will not help: the feed, its server or its settings must change."""


class ClientError(PermanentError, HTTPStatusError):
    """HTTP 4xx other than 429."""


class BlockedDestination(PermanentError):
    """Refused by the SSRF guard (FEEDPIPE_ALLOW_PRIVATE_NETWORKS, FEEDPIPE_ALLOWED_NETWORKS)."""


class RedirectError(PermanentError):
    pass


class TLSError(PermanentError):
    pass


class ResponseTooLarge(PermanentError):
    pass


class DisallowedByRobots(PermanentError):
    """An article page its site's robots.txt disallows, or whose robots.txt was unreachable
    (pipeline/robots.py): not fetched; the item is made from the feed's text."""


class BadEncoding(PermanentError):
    """A page kept as the server sent it (pipeline/page_store.py) whose Content-Encoding is
    not one we decode, or whose compressed body is broken or cut short."""


class NotAFeed(PermanentError):
    """The body is not RSS/Atom/RDF (HTML page, image, garbage)."""
