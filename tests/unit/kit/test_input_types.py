"""The kit's input types and last-line error mapping: hostile input is a 422, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Query
from pydantic import ValidationError

from services.kit.models import (
    INT4_MAX,
    MAX_PAGE_OFFSET,
    MultilineText,
    PageOffset,
    RequestModel,
    Text,
    Version,
)
from services.kit.pagination import MalformedCursor, decode_cursor, encode_cursor
from services.kit.settings import ServiceSettings
from services.kit.web import create_service_app


class Note(RequestModel):
    title: Text
    body: MultilineText = ""
    version: Version | None = None


@pytest.mark.parametrize(
    "bad", ["a\x00b", "a\x01", "line\nbreak", "tab\there", "del\x7f", "\ud800"]
)
def test_one_line_text_refuses_controls_and_lone_surrogates(bad: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Note.model_validate({"title": bad})


def test_multiline_text_keeps_whitespace_but_refuses_nul() -> None:
    assert Note.model_validate({"title": "t", "body": "a\n\tb\r\n"}).body == "a\n\tb\r\n"
    assert Note.model_validate({"title": "Zoë 東京 🚀"}).title == "Zoë 東京 🚀"
    for bad in ("a\x00", "\x1b[31m", "\udfff"):
        with pytest.raises(ValidationError):
            Note.model_validate({"title": "t", "body": bad})


def test_a_request_body_names_an_unknown_field() -> None:
    with pytest.raises(ValidationError) as raised:
        Note.model_validate({"title": "t", "notes": "lost"})
    [error] = raised.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("notes",)


def test_versions_and_offsets_are_bounded() -> None:
    with pytest.raises(ValidationError):
        Note.model_validate({"title": "t", "version": INT4_MAX + 1})
    assert Note.model_validate({"title": "t", "version": INT4_MAX}).version == INT4_MAX


def test_a_cursor_with_controls_or_wrong_types_is_malformed() -> None:
    def parse(name: str, key: str) -> tuple[str, str]:
        return name, str(uuid.UUID(key))

    with pytest.raises(MalformedCursor):
        decode_cursor(encode_cursor("a\x00", "x"), parse)
    # uuid.UUID(<int>) raises AttributeError, not ValueError
    with pytest.raises(MalformedCursor):
        decode_cursor(encode_cursor("a", 7), lambda n, k: parse(n, k))
    with pytest.raises(MalformedCursor):
        decode_cursor("é", parse)


@asynccontextmanager
async def _nothing(_: FastAPI) -> AsyncIterator[None]:
    yield


def _app() -> FastAPI:
    app = create_service_app(ServiceSettings(), "test", _nothing)

    @app.get("/search")
    async def search(
        q: Annotated[Text | None, Query(max_length=50)] = None,
        offset: Annotated[PageOffset, Query()] = 0,
    ) -> dict[str, object]:
        return {"q": q, "offset": offset}

    @app.post("/notes")
    async def notes(note: Note) -> Note:
        return note

    @app.get("/out-of-range")
    async def out_of_range() -> None:
        raise psycopg.errors.NumericValueOutOfRange("integer out of range")

    @app.get("/unencodable")
    async def unencodable() -> None:
        "\ud800".encode()

    return app


async def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_query_text_with_nul_and_deep_offsets_are_422() -> None:
    async with await _client() as client:
        assert (await client.get("/search", params={"q": "ok"})).status_code == 200
        nul = await client.get("/search", params={"q": "a\x00b"})
        deep = await client.get("/search", params={"offset": MAX_PAGE_OFFSET + 1})
    assert nul.status_code == 422, nul.text
    assert nul.json()["errors"][0]["field"] == "query.q"
    assert deep.status_code == 422, deep.text


async def test_an_unknown_body_field_is_422_naming_it() -> None:
    async with await _client() as client:
        response = await client.post("/notes", json={"title": "t", "notes": "x"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["notes"]


async def test_a_lone_surrogate_in_json_is_422() -> None:
    async with await _client() as client:
        response = await client.post(
            "/notes", content=b'{"title": "\\ud800"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", ["/out-of-range", "/unencodable"])
async def test_driver_data_errors_are_422_problems(path: str) -> None:
    async with await _client() as client:
        response = await client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-input")


def _limited_app(limit: int) -> FastAPI:
    app = create_service_app(ServiceSettings(MAX_REQUEST_BODY_BYTES=limit), "test", _nothing)

    @app.post("/notes")
    async def notes(note: Note) -> Note:
        return note

    return app


async def test_a_declared_body_over_the_limit_is_413_before_the_app_reads_it() -> None:
    transport = httpx.ASGITransport(app=_limited_app(64), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        fits = await client.post("/notes", json={"title": "t"})
        too_big = await client.post("/notes", content=b"x" * 65)
    assert fits.status_code == 200
    assert too_big.status_code == 413
    assert too_big.json()["type"].endswith("/payload-too-large")
    assert too_big.headers["x-request-id"]


async def test_a_streamed_body_over_the_limit_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b'{"title": "' + b"y" * 20

    transport = httpx.ASGITransport(app=_limited_app(64), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/notes", content=chunks())
    assert response.status_code == 413, response.text
