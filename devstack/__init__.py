"""The local stack: how to run each backing server and service of the platform on this machine.

`servers` knows how to run PostgreSQL, Redis, RabbitMQ, Kafka and Prometheus as plain foreground
processes bound to 127.0.0.1 with their data and logs under one folder; `platform` gives each
service of `services/registry.py` its local port. The same specs serve `make up` (through
supervisord, see `stack`) and the test fixtures (through `process.ManagedProcess`, see
`testing`).
"""
