-- The trace context active when the delivery was recorded (the consumed order event's span:
-- W3C `traceparent`, and `tracestate` when there is one). The delivery relay publishes the
-- message in that trace, so the channel worker's span continues the order's trace
-- (services/kit/tracing.py). NULL while tracing is off.
ALTER TABLE deliveries ADD COLUMN trace_context jsonb;
