"""The SMS and push provider sink (devstack/provider_sink.py) answers like a provider with
idempotency keys, and lists what it accepted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.provider_sink import serving
from devstack.testing import ProviderSinkServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client(provider_sink_server: ProviderSinkServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider_sink_server.url, timeout=5) as client:
        yield client


def _sms(reference: str, **changes: Any) -> dict[str, Any]:
    return {"to": "+4930123456", "body": "Order 42 shipped", "reference": reference} | changes


def test_a_repeated_idempotency_key_answers_the_first_answer_and_delivers_once(
    client: httpx.Client, provider_sink_server: ProviderSinkServer
) -> None:
    reference = str(uuid.uuid4())
    headers = {"Idempotency-Key": reference, "Authorization": "Bearer any-token"}
    first = client.post("/sms", json=_sms(reference), headers=headers)
    again = client.post("/sms", json=_sms(reference), headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "accepted"
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    [message] = provider_sink_server.messages("sms", reference)
    assert message["id"] == first.json()["id"]
    assert message["idempotencyKey"] == reference
    assert message["request"] == _sms(reference)


def test_each_new_key_is_a_new_message(
    client: httpx.Client, provider_sink_server: ProviderSinkServer
) -> None:
    reference = str(uuid.uuid4())
    for _ in range(2):
        answer = client.post(
            "/sms", json=_sms(reference), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert answer.status_code == 202
    assert len(provider_sink_server.messages("sms", reference)) == 2


def test_push_is_listed_under_its_own_channel(
    client: httpx.Client, provider_sink_server: ProviderSinkServer
) -> None:
    reference = str(uuid.uuid4())
    push = {
        "userId": "user-1",
        "title": "Order shipped",
        "body": "Order 42 is on its way",
        "data": {"orderId": "42", "status": "SHIPPED"},
        "reference": reference,
    }
    answer = client.post("/push", json=push, headers={"Idempotency-Key": reference})
    assert answer.status_code == 202
    assert answer.json()["id"].startswith("push_")

    [message] = provider_sink_server.wait_for_messages("push", reference)
    assert message["request"] == push
    assert provider_sink_server.messages("sms", reference) == []
    listed = client.get("/messages").json()
    assert listed["messages"][0]["id"] == answer.json()["id"]  # newest first, all channels
    assert listed["accepted"]["push"] >= 1


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/sms", {"body": "hi", "reference": "r"}, ["to"]),
        ("/sms", {"to": "+4930123456", "body": "", "reference": "r"}, ["body"]),
        ("/sms", {"to": "+4930123456", "body": "hi"}, ["reference"]),
        ("/push", {"userId": "u", "body": "b", "reference": "r"}, ["title"]),
        (
            "/push",
            {"userId": "u", "title": "t", "body": "b", "reference": "r", "data": []},
            ["data"],
        ),
        ("/push", [], []),
    ],
)
def test_a_body_without_the_required_fields_is_refused(
    client: httpx.Client, path: str, body: Any, fields: list[str]
) -> None:
    key = str(uuid.uuid4())
    answer = client.post(path, json=body, headers={"Idempotency-Key": key})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["fields"] == fields
    # a refused request is not remembered: the same key with a good body is accepted
    good = (
        _sms(key)
        if path == "/sms"
        else {"userId": "u", "title": "t", "body": "b", "reference": key}
    )
    assert client.post(path, json=good, headers={"Idempotency-Key": key}).status_code == 202


def test_a_body_that_is_not_json_is_refused(client: httpx.Client) -> None:
    answer = client.post("/sms", content=b"to=+4930123456", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "the body is not JSON"


def test_injected_faults_deliver_nothing_until_they_are_spent(
    client: httpx.Client, provider_sink_server: ProviderSinkServer
) -> None:
    reference = str(uuid.uuid4())
    provider_sink_server.fail_next("sms", 503, count=2)
    headers = {"Idempotency-Key": reference}
    failed = [client.post("/sms", json=_sms(reference), headers=headers) for _ in range(2)]
    assert [answer.status_code for answer in failed] == [503, 503]
    assert failed[0].headers["Retry-After"] == "1"
    assert provider_sink_server.messages("sms", reference) == []

    assert client.post("/sms", json=_sms(reference), headers=headers).status_code == 202
    assert len(provider_sink_server.messages("sms", reference)) == 1


def test_the_page_lists_messages_escaped(client: httpx.Client) -> None:
    reference = str(uuid.uuid4())
    body = f"<script>alert(1)</script> {reference}"
    client.post("/sms", json=_sms(reference, body=body), headers={"Idempotency-Key": reference})
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert f"&lt;script&gt;alert(1)&lt;/script&gt; {reference}" in page.text
    assert "<script>" not in page.text
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/messages", params={"channel": "email"}).status_code == 400


async def test_with_a_token_only_its_bearer_is_served() -> None:
    async with serving(token="s3cret") as url, httpx.AsyncClient(base_url=url) as client:
        body = _sms("r-1")
        refused = await client.post("/sms", json=body, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        accepted = await client.post("/sms", json=body, headers={"Authorization": "Bearer s3cret"})
        assert accepted.status_code == 202
        listed = (await client.get("/messages")).json()
        assert [message["request"] for message in listed["messages"]] == [body]


async def test_only_the_last_messages_are_kept_but_every_one_is_counted() -> None:
    async with serving(capacity=3) as url, httpx.AsyncClient(base_url=url) as client:
        for number in range(5):
            answer = await client.post("/sms", json=_sms(f"r-{number}"))
            assert answer.status_code == 202
        listed = (await client.get("/messages", params={"channel": "sms"})).json()
        assert [m["request"]["reference"] for m in listed["messages"]] == ["r-4", "r-3", "r-2"]
        assert listed["accepted"] == {"sms": 5, "push": 0}
        assert (await client.delete("/messages")).status_code == 204
        assert (await client.get("/messages")).json()["messages"] == []
