"""The SMS and push sink's memory of idempotency keys (devstack/provider_sink.py)."""

from __future__ import annotations

import pytest

from devstack import provider_sink


def test_the_oldest_keys_are_forgotten_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_sink, "IDEMPOTENCY_KEYS_KEPT", 3)
    sink = provider_sink.Sink()
    for n in range(5):
        sink.remember("push", f"k{n}", b"%d" % n)
    sink.remember("sms", "k4", b"sms")
    assert list(sink.answers) == [("push", "k3"), ("push", "k4"), ("sms", "k4")]
    assert sink.answers[("push", "k4")] == b"4"
