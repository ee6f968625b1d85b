-- The in-app notifications, their deliveries to the other channels (the RabbitMQ outbox),
-- each user's preferences, and the newest order version notified per order.
CREATE TABLE preferences (
    user_id    text        PRIMARY KEY,
    -- Only what the user set: {"order.confirmed": {"sms": true}, ...}; the rest is default.
    channels   jsonb       NOT NULL DEFAULT '{}',
    email      text,
    phone      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_versions (
    order_id   uuid        PRIMARY KEY,
    version    integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id            uuid        PRIMARY KEY,
    user_id       text        NOT NULL,
    order_id      uuid        NOT NULL,
    event_id      uuid        NOT NULL UNIQUE,
    event_type    text        NOT NULL,
    order_version integer     NOT NULL,
    title         text        NOT NULL,
    body          text        NOT NULL,
    data          jsonb       NOT NULL,
    read_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- The center lists a user's newest first (keyset pagination) and counts the unread.
CREATE INDEX notifications_user_recent ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_order ON notifications (order_id);

-- One row per notification and channel. `pending` rows are the outbox the relay publishes;
-- `queued` once the broker confirmed; `skipped` when the channel had no recipient.
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    status          text        NOT NULL CHECK (status IN ('pending', 'queued', 'skipped')),
    recipient       text,
    reason          text,
    queue           text        NOT NULL,
    payload         bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz,
    UNIQUE (notification_id, channel)
);
CREATE INDEX deliveries_pending ON deliveries (created_at, id) WHERE status = 'pending';
