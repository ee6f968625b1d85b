"""What a channel sends, rendered from Jinja2 templates per channel and event type.

`templates/<channel>/<event type>.j2` (for instance `templates/email/order.confirmed.j2`) extends
`templates/<channel>/base.j2` and fills its blocks:

- email: `subject`, `text` (the plain-text part) and `html` (the HTML part, autoescaped);
- sms: `text`;
- push: `title` and `text`.

A template sees `data` (the message's `data`, camelCase as in messages.py: `orderId`,
`shortOrderId`, `status`, `total`, `currency`, `reason`, `items`, `title`, `body`...) and
`message` (the whole message: `recipient`, `eventType`, `deliveryId`...). Undefined names are
errors (StrictUndefined), so a template that cannot render fails loudly: the worker
dead-letters the message as a permanent failure instead of sending a half-empty text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from services.notifications.domain import Channel

TEMPLATES = Path(__file__).parent / "templates"


class RenderFailed(Exception):
    """A template is missing or cannot render with the message's data."""


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None


_BLOCKS: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: ("subject", "text", "html"),
    Channel.SMS: ("text",),
    Channel.PUSH: ("title", "text"),
}


class Renderer:
    """Renders one channel's messages; templates are loaded once and cached.

    Two environments over the same files: the `html` block renders with autoescape on (data
    such as a product name cannot inject markup), the other blocks as plain text."""

    def __init__(self, channel: Channel, directory: Path = TEMPLATES) -> None:
        self.channel = channel
        self.plain = _environment(directory, autoescape=False)
        self.html = _environment(directory, autoescape=True)

    def render(self, event_type: str, message: dict[str, Any]) -> Rendered:
        """Render the message (as its JSON document) for `event_type`; raises `RenderFailed`."""
        name = f"{self.channel}/{event_type}.j2"
        variables = {"data": message.get("data"), "message": message}
        parts: dict[str, str] = {}
        try:
            contexts: dict[bool, tuple[jinja2.Template, Any]] = {}
            for block in _BLOCKS[self.channel]:
                html = block == "html"
                if html not in contexts:  # one context per environment, shared by its blocks
                    template = (self.html if html else self.plain).get_template(name)
                    contexts[html] = (template, template.new_context(variables))
                template, context = contexts[html]
                parts[block] = "".join(template.blocks[block](context))
        except (jinja2.TemplateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RenderFailed(f"template {name} cannot render: {exc!r}") from exc
        return Rendered(
            text=parts["text"].strip(),
            subject=_one_line(parts.get("subject")),
            html=parts.get("html", "").strip() or None,
            title=_one_line(parts.get("title")),
        )


def _environment(directory: Path, *, autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=autoescape,  # noqa: S701 - off only for plain text (email text, SMS, push)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code: no stat() of the file per render
    )


def _one_line(value: str | None) -> str | None:
    return " ".join(value.split()) if value is not None else None
