"""Both web apps in a real browser against the real platform (see conftest.py).

browser_flows.cjs drives Debian's Chromium through playwright-core: a customer registers,
orders and sees CONFIRMED arrive without reloading; an admin sees the order appear live and
ships it; the customer sees SHIPPED and a new notification; an out-of-stock order shows FAILED
with the reason; another user cannot open the order; the Socket.IO connection is cut and
restored and the tracker catches up with order.sync. The admin then sets a date range and sees
the platform's orders in the analytics charts, finds the order's events in the event log, sees
the Kafka topics, consumer lag and RabbitMQ queue depths, and in the dead-letter browser replays
one dead-lettered push (which is then delivered) and discards another. Signing out in a second
tab ends the first tab's live session (session.ended): it shows the sign-in form. Every main
screen is saved in light and dark mode (WEB_SCREENSHOTS_DIR keeps them, as the README's images
are made) and must pass axe-core without serious violations.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import WebPlatform

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "frontend" / "node_modules"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.integration,
    # The platform's start and one build of the apps come first on a cold run.
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (make install adds it)"
    ),
]


async def test_customer_and_admin_flows_in_a_browser(
    web_platform: WebPlatform, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    product = await web_platform.product(f"Lamp {suffix}", stock=100)
    scarce = await web_platform.product(f"Rare vase {suffix}", stock=1)
    screenshots = Path(os.environ.get("WEB_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    node = shutil.which("node")
    assert node is not None, "the browser tests need Node.js (make install checks for it)"
    environment = {
        **os.environ,
        "NODE_PATH": str(NODE_MODULES),
        "CHROMIUM": CHROMIUM,
        "USER_APP_URL": web_platform.user_app_url,
        "ADMIN_URL": web_platform.admin_url,
        "GATEWAY_URL": web_platform.gateway_url,
        "CONTROL_URL": web_platform.control_url,
        "ADMIN_EMAIL": web_platform.admin_email,
        "ADMIN_PASSWORD": web_platform.admin_password,
        "ADMIN_TOKEN": web_platform.admin_token,
        "PRODUCT_NAME": product["name"],
        "SCARCE_PRODUCT_ID": product_id(scarce),
        "SCARCE_PRODUCT_NAME": scarce["name"],
        "SCREENSHOTS": str(screenshots),
        "AXE_PATH": str(NODE_MODULES / "axe-core" / "axe.min.js"),
    }
    process = await asyncio.create_subprocess_exec(
        node,
        str(Path(__file__).with_name("browser_flows.cjs")),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(300):
            while line := await process.stdout.readline():
                lines.append(line.decode(errors="replace"))
                print(lines[-1], end="", flush=True)
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the browser flows did not finish in time:\n" + "".join(lines))
    assert process.returncode == 0, "".join(lines)


def product_id(product: dict[str, object]) -> str:
    return str(product["id"])
