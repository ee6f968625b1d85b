"""Settings of the notifications service (environment variables; the seed's names keep working)."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import EventServiceSettings


class Settings(EventServiceSettings):
    """The notifications service's settings.

    - RABBITMQ_URL (kit): the broker the deliveries are published to.
    - DECLARE_QUEUES: declare the queues of `topology.py` at start (the default, for `make up`
      and tests); false where someone else owns them (the operator's NotificationQueues in the
      chart), in which case the service only checks that they exist.
    - RELAY_BATCH_SIZE: deliveries published per relay round (one transaction).
    - RUN_RELAY, RUN_CONSUMERS, KAFKA_CONSUMER_GROUP: see `EventServiceSettings`; RUN_RELAY also
      runs the delivery relay to RabbitMQ.
    """

    service_name: str = "notifications"
    port: int = Field(default=3004, alias="PORT")

    declare_queues: bool = Field(default=True, alias="DECLARE_QUEUES")
    relay_batch_size: int = Field(default=200, alias="RELAY_BATCH_SIZE", gt=0, le=5000)
