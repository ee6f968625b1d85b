-- The open orders of a user (what the holding limits count), so reading them costs what the user
-- holds, bounded by the limits, instead of a walk over their whole history. The list matches
-- domain.OPEN_STATUSES, written out as the repository's queries write it.
CREATE INDEX orders_user_open ON orders (user_id) WHERE status IN ('CONFIRMED', 'CREATED');
