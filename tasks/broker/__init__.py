"""litscreen's PostgreSQL broker: kombu's SQLAlchemy transport, extended so Celery works fully on PostgreSQL alone.

Selected by the broker URL ``litpg+postgresql+psycopg://...`` (``celeryconfig.py`` registers the alias ``litpg``
in ``kombu.transport.TRANSPORT_ALIASES`` as ``tasks.broker.transport:Transport``). It keeps kombu's tables
(``kombu_queue``, ``kombu_message``, created by the migrations, never by the transport) and adds what stock kombu
lacks:

* bindings persisted in ``kombu_binding``, so direct, topic and **fanout** routing work across processes (remote
  control, ``celery inspect``, revoke, events for Flower); routing happens in one SQL statement;
* a driver type (``postgresql``) that Celery does not switch events off for;
* fetch with ``FOR UPDATE SKIP LOCKED``; **delete on ack**; ``no_ack`` messages are deleted as they are read;
* a **visibility timeout**: a fetched, unacked message carries a deadline that the live consumer's keeper
  renews, so a killed worker's messages become visible again once their deadline passes (``acks_late`` means
  what it says);
* queue expiry (``x-expires``) and message TTL (``x-message-ttl``);
* LISTEN/NOTIFY wake-ups and **Celery event-loop support** (``implements.asynchronous``), so a worker runs the
  same ``asynloop`` as on Redis;
* one broker connection per process however many kombu connections it makes, plus one LISTEN connection in
  consuming processes; a refusing or restarting server is waited for (bounded backoff with jitter), not fatal;
* transport options that work: ``polling_interval``, ``visibility_timeout``, ``housekeeping_interval``,
  ``listen``, ``reconnect_wait`` and ``direct_url`` (a session-level URL for LISTEN when the broker URL goes
  through a transaction pooler such as PgBouncer).

Modules: ``sql`` (every statement), ``connection`` (the shared connection and its backoff), ``listener``
(LISTEN), ``channel``, ``transport``, ``keeper`` (renewal, queue liveness) and ``housekeeping`` (the one
implementation, also run by beat). The package imports nothing from ``app/``; it touches kombu's
virtual-transport internals, so kombu/celery are pinned to tested minor versions in pyproject.toml.
"""
