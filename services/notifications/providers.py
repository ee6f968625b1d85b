"""The channels' providers: SMTP for email, HTTP adapters for SMS and push.

A sender sends one message's rendered content and returns the provider's answer (recorded with
the attempt), or raises:

- `TransientFailure` for what may work later: a timeout, a refused or dropped connection, an
  SMTP 4xx answer, an HTTP 5xx, 408, 425 or 429: the worker retries it after a delay;
- `PermanentFailure` for what never will: an invalid address, an SMTP 5xx answer, another HTTP
  4xx: the worker dead-letters it at once.

Idempotency: each send carries the delivery id, stable across retries and redeliveries. Email
gets the Message-ID `<delivery id@realtimeorder>` (a mail system or reader that sees the same
Message-ID twice can drop the copy); SMS and push requests carry `Idempotency-Key: <delivery
id>`, which providers with idempotency support use to accept a repeat once.

The SMS and push providers' request shape (JSON, `Authorization: Bearer <token>` when a token is
set; a 2xx answer means accepted, its JSON `id` if any is recorded):

    POST SMS_PROVIDER_URL   {"to": "+4930123456", "body": "...", "reference": "<delivery id>"}
    POST PUSH_PROVIDER_URL  {"userId": "...", "title": "...", "body": "...",
                             "data": {"orderId": "...", "eventType": "...", "url": "/orders/..."},
                             "reference": "<delivery id>"}
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiosmtplib
import orjson
from email_validator import EmailNotValidError, validate_email

from services.kit import http1
from services.notifications.messages import NotificationMessage
from services.notifications.rendering import Rendered

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
RESPONSE_LIMIT = 500
"""Characters of a provider's answer kept with an attempt."""


class TransientFailure(Exception):
    """The send may work later: retry."""


class PermanentFailure(Exception):
    """The send never will: dead-letter."""


class Sender(Protocol):
    async def send(self, message: NotificationMessage, content: Rendered) -> str:
        """Send; the provider's answer, or `TransientFailure` / `PermanentFailure`."""
        ...

    async def close(self) -> None: ...


def message_id_header(message: NotificationMessage) -> str:
    return f"<{message.delivery_id}@realtimeorder>"


class SmtpSender:
    """Sends email over a pool of SMTP connections (one send at a time on each)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        tls: str = "none",
        timeout: float = 10.0,
        connections: int = 8,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.tls, self.timeout = username, password, tls, timeout
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(connections)
        self._all: set[aiosmtplib.SMTP] = set()

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.tls == "tls",
            start_tls=self.tls == "starttls",
            timeout=self.timeout,
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            if client is None or not client.is_connected:
                client = self._client()
                self._all.add(client)
                await client.connect()
            try:
                yield client
            except BaseException:
                self._all.discard(client)
                await _quietly_close(client)
                raise
            self._idle.put_nowait(client)

    def compose(self, message: NotificationMessage, content: Rendered) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = content.subject or message.data.title
        email["Message-ID"] = message_id_header(message)
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["X-Order-Id"] = message.order_id
        email["X-Notification-Event"] = str(message.event_type)
        email.set_content(content.text)
        if content.html:
            email.add_alternative(content.html, subtype="html")
        return email

    async def send(self, message: NotificationMessage, content: Rendered) -> str:
        try:
            address = validate_email(message.recipient, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise PermanentFailure(f"invalid email address: {exc}") from exc
        email = self.compose(message, content)
        try:
            async with self._connection() as client:
                _, answer = await client.send_message(email, recipients=[address])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            failure = TransientFailure if all(400 <= c < 500 for c in codes) else PermanentFailure
            raise failure(f"recipient refused: {exc.recipients[0]}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            failure = TransientFailure if 400 <= exc.code < 500 else PermanentFailure
            raise failure(f"SMTP {exc.code} {exc.message}"[:RESPONSE_LIMIT]) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientFailure(f"SMTP unavailable: {exc!r}"[:RESPONSE_LIMIT]) from exc
        return f"250 {answer}"[:RESPONSE_LIMIT]

    async def close(self) -> None:
        clients, self._all = self._all, set()
        await asyncio.gather(*(_quietly_close(c) for c in clients))


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


TRANSIENT_STATUSES = frozenset({408, 425, 429})


USER_AGENT = "RealTimeOrder-notifications"
_PATH_SAFE = "/%:@!$&'()*+,;=~"
"""What a path keeps as it is (RFC 3986's path characters, and `%` so that escapes stay escapes);
the rest (spaces, non-ASCII text) is percent-encoded as UTF-8."""


def provider_address(url: str) -> tuple[bool, str, int, str]:
    """An SMS or push provider's URL as (https?, host, port, request target): the host in ASCII
    (IDNA) without a trailing dot, the path and query percent-encoded. ValueError for what cannot
    be posted to: another scheme, no host, credentials in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a provider URL is http:// or https:// with a host, not {url!r}")
    if parts.username or parts.password:
        raise ValueError("a provider URL carries no credentials: set the provider's token")
    host = parts.hostname.rstrip(".")
    try:
        host = host if ":" in host else host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"a provider URL's host is not a valid name: {host!r}") from exc
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    return https, host, port, target


KEEPALIVE_SECONDS = 15.0
"""How long an idle connection to a provider is reused (aiohttp's client kept one as long). A
provider that closes idle connections sooner is seen to when its close arrives; a close that
crosses a request makes that send a transient failure, retried like any other."""


class HttpSender:
    """POSTs one JSON request per message to an SMS or push provider (see the module docs),
    over at most `connections` kept-alive connections (services/kit/http1.py: `https://` over
    TLS, verified with `tls` or else the system's trusted certificates, which SSL_CERT_FILE and
    SSL_CERT_DIR can name; `http://` plain).

    Every request goes to the configured URL (`provider_address`): a redirect answer (3xx) is a
    permanent failure, as another 4xx is, and credentials go in the token, not in the URL."""

    def __init__(
        self,
        *,
        url: str,
        token: str | None,
        body: Any,
        timeout: float = 10.0,
        connections: int = 32,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        https, self.host, self.port, self.target = provider_address(url)
        self.tls = (tls or ssl.create_default_context()) if https else None
        self.headers = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
        if token:
            if "\r" in token or "\n" in token:
                raise ValueError("a provider token holds a line break")
            self.headers.append(("Authorization", f"Bearer {token}"))
        self.body = body
        self.timeout = timeout
        self._http = http1.Client(limit=connections, keepalive_seconds=KEEPALIVE_SECONDS)

    async def send(self, message: NotificationMessage, content: Rendered) -> str:
        payload = orjson.dumps(self.body(message, content))
        headers = [*self.headers, ("Idempotency-Key", str(message.delivery_id))]
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._http.request(
                    "POST", self.host, self.port, self.target, headers, payload, tls=self.tls
                )
        except (http1.Http1Error, OSError, TimeoutError) as exc:
            raise TransientFailure(f"provider unavailable: {exc!r}"[:RESPONSE_LIMIT]) from exc
        text = response.body[: RESPONSE_LIMIT * 4].decode("utf-8", "replace")[:RESPONSE_LIMIT]
        answer = f"{response.status} {text}".strip()
        if 200 <= response.status < 300:
            return answer
        if response.status >= 500 or response.status in TRANSIENT_STATUSES:
            raise TransientFailure(answer)
        raise PermanentFailure(answer)

    async def close(self) -> None:
        self._http.close()


def sms_body(message: NotificationMessage, content: Rendered) -> Mapping[str, Any]:
    if not E164.match(message.recipient):
        raise PermanentFailure(f"invalid phone number {message.recipient!r} (E.164 expected)")
    return {"to": message.recipient, "body": content.text, "reference": str(message.delivery_id)}


def push_body(message: NotificationMessage, content: Rendered) -> Mapping[str, Any]:
    return {
        "userId": message.user_id,
        "title": content.title or message.data.title,
        "body": content.text,
        "data": {
            "orderId": message.order_id,
            "eventType": str(message.event_type),
            "url": f"/orders/{message.order_id}",
        },
        "reference": str(message.delivery_id),
    }
