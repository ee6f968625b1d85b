"""The one shared library of RealTimeOrder's services.

It holds what every service needs and nothing that belongs to one of them: settings, the
database pool and migration runner, problem+json errors, JSON logs, metrics and health probes,
JWT tokens, the event envelope (the contract between services), Kafka, RabbitMQ and Redis
clients. It never imports a service (checked by import-linter).
"""
