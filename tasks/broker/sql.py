"""Every SQL statement of the PostgreSQL broker (psycopg ``%(name)s`` parameters, single statements).

Fetch and ack touch one delivery (``id`` plus delivery number); publishing routes and notifies in one statement;
housekeeping statements each return one count.
"""

from __future__ import annotations

NOTIFY_CHANNEL = "kombu"

UPSERT_QUEUE = """
INSERT INTO kombu_queue (name, expires_ms, message_ttl_ms, last_used_at)
VALUES (%(queue)s, %(expires)s, %(ttl)s, now())
ON CONFLICT (name) DO UPDATE
SET expires_ms = EXCLUDED.expires_ms, message_ttl_ms = EXCLUDED.message_ttl_ms, last_used_at = now()
"""

UPSERT_BINDING = """
INSERT INTO kombu_binding (exchange, exchange_type, routing_key, pattern, queue)
VALUES (%(exchange)s, %(type)s, %(routing_key)s, %(pattern)s, %(queue)s)
ON CONFLICT (exchange, routing_key, pattern, queue) DO UPDATE SET exchange_type = EXCLUDED.exchange_type
"""

_INSERT_INTO_TARGETS = """
ins AS (
    INSERT INTO kombu_message (visible, timestamp, payload, version, queue_id, expires_at)
    SELECT true, timezone('utc', now()), %(payload)s, 1, t.id,
           now() + t.message_ttl_ms * interval '1 millisecond'
    FROM targets t
    RETURNING queue_id
)
SELECT pg_notify('kombu', t.name) FROM targets t
"""

PUT = """
WITH targets AS (SELECT id, name, message_ttl_ms FROM kombu_queue WHERE name = %(queue)s),
""" + _INSERT_INTO_TARGETS

ROUTE = """
WITH targets AS (
    SELECT DISTINCT q.id, q.name, q.message_ttl_ms
    FROM kombu_binding b JOIN kombu_queue q ON q.name = b.queue
    WHERE b.exchange = %(exchange)s
      AND (b.exchange_type = 'fanout'
           OR (b.exchange_type = 'topic' AND %(routing_key)s ~ b.pattern)
           OR (b.exchange_type NOT IN ('fanout', 'topic') AND b.routing_key = %(routing_key)s))
),
""" + _INSERT_INTO_TARGETS

_NEXT_READY = """
SELECT id FROM kombu_message
WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s)
  AND visible AND (expires_at IS NULL OR expires_at > now())
ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED
"""

FETCH = f"""
UPDATE kombu_message
SET visible = false, deliveries = deliveries + 1,
    deadline = now() + %(visibility_timeout)s * interval '1 second'
WHERE id = ({_NEXT_READY})
RETURNING id, payload, deliveries
"""

FETCH_NO_ACK = f"""
DELETE FROM kombu_message WHERE id = ({_NEXT_READY})
RETURNING id, payload, deliveries + 1
"""

ACK = "DELETE FROM kombu_message WHERE id = %(id)s AND deliveries = %(deliveries)s"

RESTORE = """
WITH restored AS (
    UPDATE kombu_message SET visible = true, deadline = NULL
    WHERE id = %(id)s AND deliveries = %(deliveries)s AND NOT visible
    RETURNING queue_id
)
SELECT pg_notify('kombu', q.name) FROM restored r JOIN kombu_queue q ON q.id = r.queue_id
"""

RENEW = """
UPDATE kombu_message m SET deadline = now() + %(visibility_timeout)s * interval '1 second'
FROM unnest(%(ids)s::int[], %(deliveries)s::int[]) AS held(id, deliveries)
WHERE m.id = held.id AND m.deliveries = held.deliveries AND NOT m.visible
"""

TOUCH = """
UPDATE kombu_queue SET last_used_at = now() WHERE name = ANY(%(queues)s) RETURNING name
"""

SIZE = """
SELECT count(*) FROM kombu_message
WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s) AND visible
"""

PURGE = """
DELETE FROM kombu_message WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s) AND visible
"""

DELETE_QUEUE = """
WITH b AS (DELETE FROM kombu_binding WHERE queue = %(queue)s)
DELETE FROM kombu_queue WHERE name = %(queue)s
"""

HAS_QUEUE = "SELECT EXISTS (SELECT 1 FROM kombu_queue WHERE name = %(queue)s)"

BINDINGS_OF = "SELECT routing_key, pattern, queue FROM kombu_binding WHERE exchange = %(exchange)s"


# -- housekeeping: each statement returns one count; messages go with their queue (ON DELETE CASCADE) ----------

HOUSEKEEPING_LOCK = 0x6B6F6D6275  # transaction-level advisory lock key ("kombu"): one runner at a time

TRY_HOUSEKEEPING_LOCK = "SELECT pg_try_advisory_xact_lock(%(key)s)"

_RECLAIM_OVERDUE = """
WITH reclaimed AS (
    UPDATE kombu_message SET visible = true, deadline = NULL
    WHERE NOT visible AND deadline < now()
    RETURNING queue_id
), notified AS (
    SELECT pg_notify('kombu', q.name)
    FROM (SELECT DISTINCT queue_id FROM reclaimed) r JOIN kombu_queue q ON q.id = r.queue_id
)
SELECT (SELECT count(*) FROM reclaimed) + 0 * (SELECT count(*) FROM notified)
"""

_EXPIRED_QUEUES = """
WITH dead AS (
    SELECT id, name FROM kombu_queue
    WHERE expires_ms IS NOT NULL AND last_used_at < now() - expires_ms * interval '1 millisecond'
    FOR UPDATE SKIP LOCKED
), unbound AS (
    DELETE FROM kombu_binding WHERE queue IN (SELECT name FROM dead) RETURNING 1
), deleted AS (
    DELETE FROM kombu_queue WHERE id IN (SELECT id FROM dead) RETURNING 1
)
SELECT count(*) FROM deleted
"""

_ORPHAN_BINDINGS = """
WITH deleted AS (
    DELETE FROM kombu_binding b WHERE NOT EXISTS (SELECT 1 FROM kombu_queue q WHERE q.name = b.queue)
    RETURNING 1
)
SELECT count(*) FROM deleted
"""

_EXPIRED_MESSAGES = """
WITH deleted AS (DELETE FROM kombu_message WHERE expires_at < now() RETURNING 1)
SELECT count(*) FROM deleted
"""

# Rows left by kombu's stock transport (it marks delivered rows invisible and never deletes them); our
# transport always sets a deadline on an invisible row.
_ACKED_LEFTOVERS = """
WITH deleted AS (DELETE FROM kombu_message WHERE NOT visible AND deadline IS NULL RETURNING 1)
SELECT count(*) FROM deleted
"""


HOUSEKEEPING = (
    ("reclaimed_messages", _RECLAIM_OVERDUE),
    ("expired_queues", _EXPIRED_QUEUES),
    ("orphan_bindings", _ORPHAN_BINDINGS),
    ("expired_messages", _EXPIRED_MESSAGES),
    ("acked_leftovers", _ACKED_LEFTOVERS),
)
