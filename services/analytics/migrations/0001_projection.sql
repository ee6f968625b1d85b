-- The analytics projection: what the order events say, kept to answer business questions.
-- Built only by consuming the events (handlers.py), so it can be dropped and rebuilt by
-- replaying the topics from the start (`realtimeorder analytics-replay`).

-- Every consumed event, once: the event log the admin dashboard browses, and the dedupe that
-- keeps a replay from counting anything twice (its primary key outlives the kit's
-- processed_events, which are purged after a while).
CREATE TABLE event_log (
    event_id    uuid        PRIMARY KEY,
    topic       text        NOT NULL,
    type        text        NOT NULL,
    source      text        NOT NULL,
    order_id    text        NOT NULL,
    user_id     text,
    version     integer,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_log_occurred ON event_log (occurred_at DESC, event_id DESC);
CREATE INDEX event_log_order ON event_log (order_id, occurred_at DESC);
CREATE INDEX event_log_type ON event_log (type, occurred_at DESC);

-- One row per order: its newest known status (by order version) and the facts of its
-- creation. Events of one order come on several topics, so they may arrive in any order: a
-- status event can create the row before `order.created` fills in `created_at` and `total`.
CREATE TABLE order_facts (
    order_id     text          PRIMARY KEY,
    user_id      text          NOT NULL,
    status       text          NOT NULL,
    version      integer       NOT NULL,
    total        numeric(14,2),
    currency     text,
    item_count   integer,
    created_at   timestamptz,
    confirmed_at timestamptz,
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX order_facts_created ON order_facts (created_at) WHERE created_at IS NOT NULL;
