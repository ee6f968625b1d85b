"""`python -m realtimeorder_operator`: run the operator with its settings from the environment.

Watches WATCH_NAMESPACE (comma-separated; every namespace when empty), serves kopf's liveness
probe on HEALTH_PORT (/healthz) and Prometheus metrics on METRICS_PORT, logs JSON lines.
"""

from __future__ import annotations

import kopf

import realtimeorder_operator.handlers  # noqa: F401  (registers the handlers)
from realtimeorder_operator.settings import get_settings


def main() -> None:
    settings = get_settings()
    kopf.configure(verbose=settings.log_level.upper() == "DEBUG", log_format=kopf.LogFormat.JSON)
    namespaces = settings.namespaces
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
