"""The benchmark report names how the measured stack traced, from a service's environment."""

from __future__ import annotations

from bench.__main__ import describe_tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


def test_without_an_endpoint_or_when_disabled_tracing_is_off() -> None:
    assert describe_tracing({}) == "off"
    assert describe_tracing({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}) == "off"


def test_the_default_sampler_traces_every_order() -> None:
    assert describe_tracing(ENDPOINT) == "every order"


def test_a_ratio_sampler_is_reported_as_a_share_of_orders() -> None:
    env = {
        **ENDPOINT,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    }
    assert describe_tracing(env) == "1% of orders (parentbased_traceidratio)"
