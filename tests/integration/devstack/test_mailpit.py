"""Mailpit, the email worker's SMTP server in tests and `make up`: what goes in over SMTP comes
back whole through its API."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage

import httpx
import pytest

from devstack import servers
from devstack.testing import MailpitServer

pytestmark = pytest.mark.integration


def _order_mail(recipient: str, delivery_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "RealTimeOrder <no-reply@realtimeorder.local>"
    message["To"] = recipient
    message["Subject"] = "Your order is confirmed"
    message["Message-ID"] = f"<{delivery_id}@realtimeorder.local>"
    message["X-Delivery-Id"] = delivery_id
    message.set_content("Order 42 is confirmed: 2 x Mug.")
    message.add_alternative("<p>Order <b>42</b> is confirmed: 2 x Mug.</p>", subtype="html")
    return message


def test_a_mail_sent_with_any_login_is_read_back_whole(mailpit_server: MailpitServer) -> None:
    recipient, delivery_id = f"ada-{uuid.uuid4().hex[:8]}@example.com", str(uuid.uuid4())
    with smtplib.SMTP(mailpit_server.host, mailpit_server.smtp_port, timeout=10) as smtp:
        smtp.login("any-user", "any-password")
        smtp.send_message(_order_mail(recipient, delivery_id))

    [summary] = mailpit_server.wait_for_messages(f'to:"{recipient}"')
    assert summary["Subject"] == "Your order is confirmed"
    assert summary["MessageID"] == f"{delivery_id}@realtimeorder.local"
    assert [to["Address"] for to in summary["To"]] == [recipient]

    mail = mailpit_server.message(summary["ID"])
    assert mail["From"]["Address"] == "no-reply@realtimeorder.local"
    assert mail["Text"].strip() == "Order 42 is confirmed: 2 x Mug."
    assert "<b>42</b>" in mail["HTML"]
    assert mailpit_server.headers(summary["ID"])["X-Delivery-Id"] == [delivery_id]
    assert summary["ID"] in {message["ID"] for message in mailpit_server.messages()}


def test_a_mail_sent_without_login_is_kept_too(mailpit_server: MailpitServer) -> None:
    recipient = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    with smtplib.SMTP(mailpit_server.host, mailpit_server.smtp_port, timeout=10) as smtp:
        smtp.send_message(_order_mail(recipient, str(uuid.uuid4())))
    assert len(mailpit_server.wait_for_messages(f'to:"{recipient}"')) == 1


def test_the_web_ui_answers(mailpit_server: MailpitServer) -> None:
    with httpx.Client(base_url=mailpit_server.web_url, timeout=5) as client:
        assert client.get("/").status_code == 200
        info = client.get("/api/v1/info").json()
        assert info["Version"] == servers.MAILPIT_VERSION
        if (servers.mailpit_binary().parent / ".with-web-ui").exists():
            # scripts/install.sh built the UI's bundle into the binary
            assert client.get("/dist/app.js").status_code == 200
