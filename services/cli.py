"""The `realtimeorder` command: runs any service of the platform and its admin tasks.

    realtimeorder serve auth            # one service, configured by environment variables
    realtimeorder worker email          # one notification channel worker (email, sms, push)
    realtimeorder create-admin EMAIL    # the first admin (password from ADMIN_PASSWORD or a prompt)
    realtimeorder analytics-replay      # rebuild the analytics projection from the topics

`serve` runs the services of `services/registry.py` whose package is written; each provides
`settings.Settings` and `main.create_app`. The image and `make up` run every service through
this one entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import os
import sys
from typing import Any

from services.registry import runnable

WORKER_CHANNELS = ("email", "sms", "push")


def _settings(service: str) -> Any:
    return importlib.import_module(f"services.{service}.settings").Settings()


def serve(service: str) -> None:
    import uvicorn

    from services.kit.logs import configure_logging

    settings = _settings(service)
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        f"services.{service}.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
        timeout_keep_alive=settings.keep_alive_seconds,
        # WebSockets (the gateway's Socket.IO) keep alive with Engine.IO's own ping every 25 s
        # (gateway/live.py), which also finds dead peers; uvicorn's WebSocket pings every 20 s
        # on top cost the gateway a ping and its pong per connection for nothing.
        ws_ping_interval=None,
    )


def worker(channel: str) -> None:
    import uvicorn

    from services.kit.logs import configure_logging
    from services.notifications.domain import Channel
    from services.notifications.settings import WorkerSettings
    from services.notifications.worker import create_worker_app

    settings = WorkerSettings()
    configure_logging(f"{channel}-worker", settings.log_level)
    uvicorn.run(
        create_worker_app(Channel(channel), settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.provider_timeout_seconds) + 10,
    )


def create_admin(email: str) -> None:
    password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Password: ")
    commands = importlib.import_module("services.auth.commands")
    try:
        asyncio.run(commands.create_admin(_settings("auth"), email, password))
    except ValueError as exc:
        sys.exit(f"create-admin: {exc}")
    print(f"{email} is an admin")


def analytics_replay(keep: bool) -> None:
    from services.kit.logs import configure_logging

    commands = importlib.import_module("services.analytics.commands")
    settings = _settings("analytics")
    configure_logging("analytics-replay", settings.log_level)
    report = asyncio.run(commands.replay(settings, keep=keep))
    print(
        f"applied {report.applied} events, {report.already_applied} already applied, "
        f"{report.unreadable} unreadable"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="realtimeorder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run one service")
    serve_cmd.add_argument("service", choices=runnable())
    worker_cmd = commands.add_parser("worker", help="run one notification channel worker")
    worker_cmd.add_argument("channel", choices=WORKER_CHANNELS)
    admin_cmd = commands.add_parser("create-admin", help="create or promote an admin account")
    admin_cmd.add_argument("email")
    replay_cmd = commands.add_parser(
        "analytics-replay", help="rebuild the analytics projection from the topics' history"
    )
    replay_cmd.add_argument(
        "--keep", action="store_true", help="apply only what is missing; do not empty it first"
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.service)
    elif args.command == "worker":
        worker(args.channel)
    elif args.command == "create-admin":
        create_admin(args.email)
    elif args.command == "analytics-replay":
        analytics_replay(args.keep)
    else:  # pragma: no cover - argparse enforces the choices
        sys.exit(2)


if __name__ == "__main__":
    main()
