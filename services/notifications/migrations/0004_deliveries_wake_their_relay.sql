-- Wake the RabbitMQ relay when a delivery becomes pending, by insert or by a dead letter's
-- requeue: NOTIFY deliveries_<schema> at commit, through the kit's notify_relay() (kit
-- migration 0003). Rows written skipped (no address) wake nothing.
CREATE TRIGGER deliveries_wake_relay AFTER INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION notify_relay('deliveries');

CREATE TRIGGER requeued_deliveries_wake_relay AFTER UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION notify_relay('deliveries');
