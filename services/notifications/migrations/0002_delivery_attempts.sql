-- What the channel workers do with each delivery: its status after each attempt, every attempt
-- with the provider's answer, and the messages that ended in the dead-letter queue.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (
    status IN ('pending', 'queued', 'skipped', 'sending', 'retrying', 'sent', 'dead', 'discarded')
);
ALTER TABLE deliveries
    ADD COLUMN attempts     integer     NOT NULL DEFAULT 0,
    -- Set while a worker holds the delivery (status 'sending'): another copy of its message
    -- waits until the claim is older than the worker's provider timeout.
    ADD COLUMN claimed_at   timestamptz,
    ADD COLUMN sent_at      timestamptz,
    ADD COLUMN provider_id  text,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now();

-- One row per attempt. outcome: sent, retry (a transient failure, parked for a later attempt),
-- failed (permanent, or the last attempt: dead-lettered), duplicate (a copy of a message
-- already sent, not sent again).
CREATE TABLE delivery_attempts (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    notification_id   uuid        NOT NULL,
    channel           text        NOT NULL,
    attempt           integer     NOT NULL,
    outcome           text        NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'duplicate')),
    provider_response text,
    duration_ms       double precision,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- The dead-letter queue, kept: every message that reached notifications.dlq, with why.
-- A worker writes the row when it dead-letters a message (its id is the DLQ message's id);
-- the service's archiver drains the queue and adds the messages the broker dead-lettered
-- itself (delivery limit reached, rejected).
CREATE TABLE dead_letters (
    id            uuid        PRIMARY KEY,
    delivery_id   uuid        REFERENCES deliveries (id) ON DELETE CASCADE,
    channel       text,
    queue         text        NOT NULL,
    reason        text        NOT NULL,
    attempts      integer     NOT NULL,
    payload       bytea       NOT NULL,
    status        text        NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'replayed', 'discarded')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    resolved_by   text
);
CREATE INDEX dead_letters_recent ON dead_letters (created_at DESC, id DESC);
CREATE INDEX dead_letters_open ON dead_letters (channel) WHERE status = 'dead';
