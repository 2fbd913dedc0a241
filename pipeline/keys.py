"""Every Redis key name and Lua script feedpipe uses, in one place.

Keys whose value format may change carry a version (``v1``): a new format gets new keys, and
old ones simply expire, so no code ever reads a value written in a format it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "feedpipe"


@dataclass(frozen=True)
class Keys:
    output_stream: str = f"{PREFIX}:items"
    duplicates_stream: str = f"{PREFIX}:duplicates"

    feeds_due: str = f"{PREFIX}:feeds:due"  # ZSET feed id -> next poll (unix seconds)
    stats: str = f"{PREFIX}:stats"  # HASH of monotonically increasing counters

    def feed(self, feed_id: str) -> str:
        """HASH: a feed's configuration and state (see models.FeedState)."""
        return f"{PREFIX}:feed:{feed_id}"

    def entry_seen(self, feed_id: str, identity_hash: str) -> str:
        """STRING "claimed" (short TTL while being processed) or "done" (seen TTL)."""
        return f"{PREFIX}:v1:entry:{feed_id}:{identity_hash}"

    def item(self, item_id: str) -> str:
        """STRING: the stream id an item was published under, or "dup:<item id>"."""
        return f"{PREFIX}:v1:item:{item_id}"

    def content(self, content_hash: str) -> str:
        """STRING: the id of the item first published with this exact normalized text."""
        return f"{PREFIX}:v1:content:{content_hash}"

    def html(self, item_id: str) -> str:
        """STRING: zlib-compressed article HTML (claim check for the extract task)."""
        return f"{PREFIX}:v1:html:{item_id}"


# Counters in Keys.stats (the live summary of `feedpipe run` reads their deltas).
STAT_POLLS = "polls"
STAT_NOT_MODIFIED = "not_modified"
STAT_POLL_ERRORS = "poll_errors"
STAT_NEW_ENTRIES = "new_entries"
STAT_PUBLISHED = "published"
STAT_DUPLICATES = "duplicates"
STAT_FALLBACKS = "extract_fallbacks"
STAT_EXTRACT_FAILED = "extract_failed"


# Take up to ARGV[3] feeds due at ARGV[1] and push each one's score ARGV[2] seconds ahead (a
# lease): a feed whose poll dies becomes due again when the lease runs out, with no other
# bookkeeping. Overlapping dispatch runs never take the same feed twice.
# KEYS[1]=feeds_due  ARGV: now, lease seconds, limit
CLAIM_DUE_FEEDS = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', lease, id) end
return ids
"""

# Claim one entry for this poll. Returns 1: new, fetch it; 0: seen or claimed by another
# worker; 2: its URL was already published from another feed (marked seen, no page fetch).
# The claim has a short TTL until confirm: a poll that dies releases it by expiry.
# KEYS[1]=entry_seen  KEYS[2]=item  ARGV: claim ttl, seen ttl
CLAIM_ENTRY = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'done', 'EX', tonumber(ARGV[2]))
  return 2
end
if redis.call('SET', KEYS[1], 'claimed', 'NX', 'EX', tonumber(ARGV[1])) then return 1 end
return 0
"""

# Publish an item exactly once, or record why not. One script, so there is no window between
# "is it new?" and "publish" in which another worker or a retried task could slip in.
# KEYS: 1 item, 2 content, 3 output stream, 4 duplicates stream, 5 stats, 6 feed hash
# ARGV: 1 item id, 2 ttl seconds, 3 maxlen, 4 item JSON, 5 duplicate record JSON,
#       6 "1" to dedupe on content too
# Returns {"published", stream id} | {"duplicate_url", kept id} | {"duplicate_content", kept id}
PUBLISH_ITEM = """
local ttl = tonumber(ARGV[2])
local existing = redis.call('GET', KEYS[1])
if existing then
  local kept = string.match(existing, '^dup:(.+)$')
  return {'duplicate_url', kept or ARGV[1]}
end
if ARGV[6] == '1' then
  local other = redis.call('GET', KEYS[2])
  if other and other ~= ARGV[1] then
    local record = cjson.decode(ARGV[5])
    record['duplicate_of'] = other
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'duplicate', cjson.encode(record))
    redis.call('SET', KEYS[1], 'dup:' .. other, 'EX', ttl)
    redis.call('HINCRBY', KEYS[5], 'duplicates', 1)
    return {'duplicate_content', other}
  end
end
local sid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'item', ARGV[4])
redis.call('SET', KEYS[1], sid, 'EX', ttl)
if ARGV[6] == '1' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl) end
redis.call('HINCRBY', KEYS[5], 'published', 1)
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('HINCRBY', KEYS[6], 'items', 1) end
return {'published', sid}
"""


def keys_for(output_stream: str, duplicates_stream: str) -> Keys:
    """Keys with the configured stream names (FEEDPIPE_OUTPUT_STREAM, ..._DUPLICATES_STREAM)."""
    return Keys(output_stream=output_stream, duplicates_stream=duplicates_stream)
