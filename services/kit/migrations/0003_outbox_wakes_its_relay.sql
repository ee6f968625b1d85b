-- Wake the outbox relay when events are written: NOTIFY outbox_<schema>, delivered when the
-- transaction commits (PostgreSQL folds the repeats of one transaction into one). A trigger,
-- not a statement the writer sends, saves a round trip per event on every hot path.
CREATE FUNCTION notify_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0] || '_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_wakes_relay AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_relay('outbox');
