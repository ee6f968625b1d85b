"""Socket.IO's JSON goes through orjson in the emitters and the gateway's server."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from socketio.async_pubsub_manager import AsyncPubSubManager

from services.kit.live import OrjsonCodec, PipelinedEmitter, create_emitter


def test_codec_writes_what_the_standard_library_writes_compactly() -> None:
    payload = {"orderId": "o-1", "status": "CONFIRMED", "version": 2, "reason": None, "n": [1.5]}

    encoded = OrjsonCodec.dumps(payload, separators=(",", ":"))

    assert encoded == json.dumps(payload, separators=(",", ":"))
    assert OrjsonCodec.loads(encoded) == payload


def test_emitters_encode_with_orjson() -> None:
    emitter = create_emitter("redis://127.0.0.1:1/0")

    assert emitter.json is OrjsonCodec


async def test_an_emit_publishes_the_message_the_library_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emitter, queued = _queueing(monkeypatch)
    published: list[Any] = []

    async def publish(message: Any) -> None:
        published.append(message)

    monkeypatch.setattr(emitter, "_publish", publish)
    payload = {"orderId": "o-1", "status": "CONFIRMED", "items": [{"n": 1}], "reason": None}

    await emitter.emit("order.updated", payload, room=["user:ada", "admins"])
    await AsyncPubSubManager.emit(emitter, "order.updated", payload, room=["user:ada", "admins"])

    assert [orjson.loads(m) for m in queued] == published


async def test_an_emit_with_bytes_goes_out_as_the_librarys_binary_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emitter, queued = _queueing(monkeypatch)

    await emitter.emit("file", {"part": b"\x00\x01"}, room="user:ada")

    (message,) = [orjson.loads(m) for m in queued]
    assert message["binary"] is True
    assert message["data"] == [[{"part": {"_placeholder": True, "num": 0}}], "AAE="]


def _queueing(monkeypatch: pytest.MonkeyPatch) -> tuple[PipelinedEmitter, list[str]]:
    """An emitter whose encoded messages land in the list instead of Redis."""
    emitter = create_emitter("redis://127.0.0.1:1/0")
    queued: list[str] = []
    monkeypatch.setattr(emitter, "_queue", queued.append)
    return emitter, queued
