"""Only holders of a cluster's certificate reach its Dask scheduler."""

from __future__ import annotations

import pytest
from distributed import Client

from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.slow


def test_a_scheduler_accepts_only_its_own_clusters_certificate(server: RunningServer) -> None:
    hub = server.hub()
    for name in ("a", "b"):
        hub.apply({"type": "cluster", "name": name, "spec": {"n_workers": 1}})
    a = hub.wait("cluster/a", {"running"}, timeout=120)
    hub.wait("cluster/b", {"running"}, timeout=120)
    address = a["endpoints"]["scheduler"]
    assert address.startswith("tls://127.0.0.1:")  # TLS, and on loopback only

    with Client(address, security=hub.cluster_security("cluster/a"), timeout="30s") as client:
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, [1, 2, 3]).result() == 6
    with pytest.raises((OSError, TimeoutError)):  # no certificate: the handshake fails
        Client(address.replace("tls://", "tcp://"), timeout="3s")
    with pytest.raises((OSError, TimeoutError)):  # another cluster's certificate: refused
        Client(address, security=hub.cluster_security("cluster/b"), timeout="3s")

    bob = server.request("POST", "/api/v1/users", json={"name": "bob"}).json()["token"]
    hidden = server.request(
        "GET", "/api/v1/resources/cluster/a/credentials", token=bob, params={"owner": "admin"}
    )
    assert hidden.status_code == 404
    own = server.request("GET", "/api/v1/resources/cluster/a/credentials").json()
    assert own["scheduler"] == address and own["tls_cert"].startswith("-----BEGIN CERTIFICATE")
