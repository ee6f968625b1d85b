"""Callers every service suite uses, signed with the `settings` of the suite's own conftest."""

from __future__ import annotations

import pytest

from services.kit.settings import ServiceSettings
from tests.support import Bearer, bearer


@pytest.fixture
def user(settings: ServiceSettings) -> Bearer:
    return bearer(settings)


@pytest.fixture
def other_user(settings: ServiceSettings) -> Bearer:
    return bearer(settings)


@pytest.fixture
def admin(settings: ServiceSettings) -> Bearer:
    return bearer(settings, "ADMIN")
