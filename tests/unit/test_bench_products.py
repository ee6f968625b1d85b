"""The product-list run waits, bounded, for a gateway that is still busy before it starts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import URLError

import pytest

from bench import products
from devstack.ports import free_port


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("ETag", 'W/"1"')
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def serving(port: int) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", port), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    thread.join()


def test_a_gateway_that_answers_is_read_at_once(port: int, serving: None) -> None:
    headers, body = products._first_answer(f"http://127.0.0.1:{port}/", within=5)
    assert (headers["etag"], body) == ('W/"1"', b"[]")


def test_a_gateway_that_never_answers_fails_after_the_bound(port: int) -> None:
    with pytest.raises(URLError, match="refused"):
        products._first_answer(f"http://127.0.0.1:{port}/", within=0.1)


def test_the_run_reports_a_silent_gateway_instead_of_failing(port: int) -> None:
    report = products.measure(f"http://127.0.0.1:{port}", seconds=1, within=0.1)
    (run,) = report.runs
    assert run.error is not None
    assert "did not answer" in run.error
