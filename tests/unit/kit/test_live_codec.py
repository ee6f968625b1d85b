"""Socket.IO's JSON goes through orjson in the emitters and the gateway's server."""

from __future__ import annotations

import json

from services.kit.live import OrjsonCodec, create_emitter


def test_codec_writes_what_the_standard_library_writes_compactly() -> None:
    payload = {"orderId": "o-1", "status": "CONFIRMED", "version": 2, "reason": None, "n": [1.5]}

    encoded = OrjsonCodec.dumps(payload, separators=(",", ":"))

    assert encoded == json.dumps(payload, separators=(",", ":"))
    assert OrjsonCodec.loads(encoded) == payload


def test_emitters_encode_with_orjson() -> None:
    emitter = create_emitter("redis://127.0.0.1:1/0")

    assert emitter.json is OrjsonCodec
