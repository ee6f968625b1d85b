-- Orders, their priced lines, their timeline of status changes, and the idempotency keys of
-- create requests. Money is numeric(12,2) in the order's one currency.
CREATE TABLE orders (
    id               uuid          PRIMARY KEY,
    user_id          text          NOT NULL,
    status           text          NOT NULL CHECK (status IN
                         ('CREATED', 'CONFIRMED', 'FAILED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    version          integer       NOT NULL CHECK (version >= 1),
    total            numeric(12,2) NOT NULL CHECK (total >= 0),
    currency         char(3)       NOT NULL,
    shipping_address jsonb         NOT NULL,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
-- Keyset pagination: newest first, per user and for admins across users.
CREATE INDEX orders_user_recent ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_recent ON orders (created_at DESC, id DESC);

CREATE TABLE order_lines (
    order_id   uuid          NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no    smallint      NOT NULL,
    product_id text          NOT NULL,
    sku        text          NOT NULL,
    name       text          NOT NULL,
    quantity   integer       NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price numeric(12,2) NOT NULL CHECK (unit_price >= 0),
    line_total numeric(12,2) NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line_no),
    UNIQUE (order_id, product_id)
);

-- One entry per version: a change applied twice would need the same version twice, which the
-- primary key refuses, so a redelivered event can never add a second entry.
CREATE TABLE order_timeline (
    order_id uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    version  integer     NOT NULL,
    status   text        NOT NULL,
    actor    text        NOT NULL,
    reason   text,
    event_id uuid,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, version)
);

CREATE TABLE idempotency_keys (
    user_id      text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    order_id     uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
