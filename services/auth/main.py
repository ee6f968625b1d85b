"""The auth service's app: `create_app` is the factory `realtimeorder serve auth` runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.auth.endpoints import router
from services.auth.passwords import build_passwords
from services.auth.ratelimit import LoginLimiter, RegistrationLimiter
from services.auth.repository import MIGRATIONS, SCHEMA
from services.auth.service import AuthService, bootstrap_admin
from services.auth.sessions import SessionMarkers
from services.auth.settings import Settings
from services.kit.cache import create_redis
from services.kit.db import apply_migrations, create_pool, ping
from services.kit.runtime import Periodic, Runtime
from services.kit.web import add_readiness_check, create_service_app

PRUNE_INTERVAL_SECONDS = 3600.0

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(settings, SCHEMA)
        redis = create_redis(settings)
        await pool.open(wait=True, timeout=30)
        try:
            await apply_migrations(pool, SCHEMA, MIGRATIONS)
            passwords = build_passwords(settings)
            await passwords.prepare()
            if settings.admin_email and settings.admin_password:
                await bootstrap_admin(
                    pool,
                    passwords,
                    settings.admin_email,
                    settings.admin_password.get_secret_value(),
                )
            elif settings.admin_email or settings.admin_password:
                log.warning(
                    "ADMIN_EMAIL and ADMIN_PASSWORD must both be set; no admin bootstrapped"
                )
            service = AuthService(
                settings,
                pool,
                passwords,
                LoginLimiter(redis, settings),
                RegistrationLimiter(redis, settings),
                SessionMarkers(redis, settings, app.state.revocations),
            )
            app.state.auth_service = service

            async def redis_ready() -> None:
                await redis.ping()

            add_readiness_check(app, "postgres", lambda: ping(pool))
            add_readiness_check(app, "redis", redis_ready)
            runtime = Runtime(settings.service_name)
            runtime.add(
                "refresh-token-pruner",
                lambda: Periodic(
                    "refresh-token-pruner",
                    PRUNE_INTERVAL_SECONDS,
                    service.prune_refresh_tokens,
                    report="pruned expired refresh tokens",
                ),
            )
            runtime.attach(app)
            runtime.start()
            try:
                yield
            finally:
                await runtime.stop()
        finally:
            await redis.aclose()
            await pool.close()

    app = create_service_app(settings, "RealTimeOrder auth", lifespan)
    app.include_router(router)
    return app
