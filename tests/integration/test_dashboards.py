"""A cluster's Dask dashboard through the control plane, and only for those allowed."""

from __future__ import annotations

import re

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.slow


def test_the_dashboard_is_relayed_to_its_owner_and_ticket_holders_only(
    server: RunningServer,
) -> None:
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 1}})
    running = hub.wait("cluster/c", {"running"}, generation=1, timeout=120)
    rid, link = running["id"], running["endpoints"]["dashboard"]
    assert link.startswith(f"{server.url}/dashboards/{rid}/status?ticket=")
    identity = f"/dashboards/{rid}/json/identity.json"

    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get(link)  # the link's ticket becomes a cookie for this dashboard
        assert page.status_code == 200 and "bokeh" in page.text.lower()
        assert browser.get(identity).json()["type"] == "Scheduler"  # the cookie alone
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    # Live plots: Bokeh's WebSocket, relayed both ways (the server's first message is ACK).
    token = re.search(r'"token"\s*:\s*"([^"]+)"', page.text)
    assert token is not None, "no Bokeh session token in the page"
    socket_url = server.url.replace("http", "ws", 1) + f"/dashboards/{rid}/status/ws"
    with connect(
        socket_url,
        subprotocols=["bokeh", token.group(1)],  # type: ignore[list-item]
        additional_headers={"Cookie": cookie},
        open_timeout=30,
    ) as socket:
        assert "ACK" in str(socket.recv(timeout=30))

    owner = {"Authorization": f"Bearer {server.token}"}
    assert httpx.get(server.url + identity, headers=owner).status_code == 200
    assert httpx.get(server.url + identity).status_code == 401
    assert httpx.get(server.url + identity, params={"ticket": "0" * 48}).status_code == 401
    other = hub.send_json("POST", "/api/v1/users", {"name": "mallory"})["token"]
    stranger = {"Authorization": f"Bearer {other}"}
    assert httpx.get(server.url + identity, headers=stranger).status_code == 404
