-- The catalogue, stock levels with their audit trail, and reservations of stock for orders.
CREATE TABLE products (
    id          uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    sku         text          NOT NULL UNIQUE,
    name        text          NOT NULL,
    description text          NOT NULL DEFAULT '',
    price       numeric(12,2) NOT NULL CHECK (price >= 0),
    currency    char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    image_url   text,
    active      boolean       NOT NULL DEFAULT true,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    version     integer       NOT NULL DEFAULT 1
);
-- The list's order (name, id) doubles as its keyset cursor.
CREATE INDEX products_name_id ON products (name, id);

CREATE TABLE stock (
    product_id uuid        PRIMARY KEY REFERENCES products (id),
    on_hand    integer     NOT NULL CHECK (on_hand >= 0),
    reserved   integer     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    available  integer     GENERATED ALWAYS AS (on_hand - reserved) STORED,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The last line of defence against overselling: no code path can reserve what is not there.
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);

CREATE TABLE stock_adjustments (
    id          bigserial   PRIMARY KEY,
    product_id  uuid        NOT NULL REFERENCES products (id),
    old_on_hand integer     NOT NULL,
    new_on_hand integer     NOT NULL,
    reason      text        NOT NULL,
    actor_id    text        NOT NULL,
    actor_email text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_adjustments_product ON stock_adjustments (product_id, id DESC);

-- One row per order inventory has heard of. REFUSED: order.created could not be served;
-- CANCELLED: a tombstone for an order cancelled before its order.created arrived.
CREATE TABLE reservations (
    order_id      text        PRIMARY KEY,
    user_id       text        NOT NULL,
    status        text        NOT NULL
        CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED', 'REFUSED', 'CANCELLED')),
    order_version integer     NOT NULL,
    expires_at    timestamptz,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'RESERVED';

CREATE TABLE reservation_lines (
    order_id   text    NOT NULL REFERENCES reservations (order_id),
    product_id uuid    NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
