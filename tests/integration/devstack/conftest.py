"""The notification providers' stand-ins as session servers, like the other test servers."""

from __future__ import annotations

import pytest

from devstack import testing


@pytest.fixture(scope="session")
def mailpit_server(test_servers: testing.TestServers) -> testing.MailpitServer:
    return test_servers.get("mailpit", testing.MailpitServer)


@pytest.fixture(scope="session")
def provider_sink_server(test_servers: testing.TestServers) -> testing.ProviderSinkServer:
    return test_servers.get("provider_sink", testing.ProviderSinkServer)
