"""Who the client is: its connection's peer, unless a proxy the operator trusts says otherwise.

The rate limit on failed authentications and the audit log both go by the
client address, so a header a client can write must not pick it.
"""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import RunningServer

FORGED = "203.0.113.{}"


def _guess(server: RunningServer, forwarded: str) -> int:
    """One bad token sent with ``X-Forwarded-For: forwarded``; the status."""
    headers = {"X-Forwarded-For": forwarded}
    return server.request(
        "POST", "/api/v1/tokens", token="titan_guess", json={}, headers=headers
    ).status_code


def _audited_clients(server: RunningServer) -> list[str]:
    events = server.request("GET", "/api/v1/audit", params={"limit": 1000}).json()
    return [e["client"] for e in events if e["path"] == "/api/v1/tokens"]


def test_forwarded_headers_of_an_untrusted_peer_are_ignored(start_server: Any) -> None:
    server = start_server(auth_failures_per_minute=30)
    assert server.request("GET", "/api/v1/users/me").status_code == 200  # the admin's, known
    codes = [_guess(server, FORGED.format(i)) for i in range(60)]
    assert codes == [401] * 30 + [429] * 30  # one client, however many addresses it claims
    clients = _audited_clients(server)
    assert len(clients) == 60 and set(clients) == {"127.0.0.1"}


def test_a_trusted_proxy_names_the_client(start_server: Any) -> None:
    server = start_server(auth_failures_per_minute=5, trusted_proxies=["127.0.0.1"])
    assert server.request("GET", "/api/v1/users/me").status_code == 200
    assert [_guess(server, FORGED.format(i)) for i in range(10)] == [401] * 10  # ten clients
    assert [_guess(server, FORGED.format(99)) for _ in range(6)] == [401] * 5 + [429]
    clients = _audited_clients(server)
    assert set(clients) == {FORGED.format(i) for i in (*range(10), 99)}
    # The proxy itself (no header) is its own client, not limited by those behind it.
    assert server.request("POST", "/api/v1/tokens", json={}).status_code == 201
