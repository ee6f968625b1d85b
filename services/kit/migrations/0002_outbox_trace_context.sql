-- The trace context active when the event was written (W3C `traceparent`, and `tracestate` when
-- there is one), so the relay publishes it in the trace of the request or message that caused
-- it (kit/tracing.py). NULL while tracing is off.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
