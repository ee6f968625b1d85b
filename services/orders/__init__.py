"""The orders service: order lifecycle, its timeline, and its events over Kafka."""
