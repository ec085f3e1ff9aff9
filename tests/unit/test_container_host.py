"""Where containers reach the control plane, from whatever the engine reports."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.backends.container_host import bridge_gateway, with_container_host
from service.errors import BackendError
from tests.conftest import make_settings


def addr(family: int, address: str) -> SimpleNamespace:
    return SimpleNamespace(family=family, address=address)


DOCKER0 = {
    "docker0": [addr(socket.AF_INET, "172.17.0.1"), addr(socket.AF_INET6, "fe80::1")],
    "lo": [addr(socket.AF_INET, "127.0.0.1")],
}


def test_the_reported_gateway_is_used() -> None:
    network = {"IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}
    assert bridge_gateway(network, DOCKER0) == "172.18.0.1"


def test_no_gateway_key_falls_back_to_the_bridge_interface() -> None:
    # What Docker 20.10 answered on a fresh machine (see shared/ENVIRONMENT.md).
    network = {
        "Name": "bridge",
        "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": "172.17.0.0/16"}]},
        "Options": {"com.docker.network.bridge.name": "docker0"},
    }
    assert bridge_gateway(network, DOCKER0) == "172.17.0.1"


def test_the_interface_named_by_the_network_and_in_its_subnet_wins() -> None:
    interfaces = {
        "br-custom": [addr(socket.AF_INET, "10.9.0.5"), addr(socket.AF_INET, "192.168.5.1")],
        **DOCKER0,
    }
    network = {
        "IPAM": {"Config": [{"Subnet": "192.168.5.0/24"}]},
        "Options": {"com.docker.network.bridge.name": "br-custom"},
    }
    assert bridge_gateway(network, interfaces) == "192.168.5.1"


@pytest.mark.parametrize(
    "network",
    [
        {},
        {"IPAM": None, "Options": None},
        {"IPAM": {"Config": None}},
        {"IPAM": {"Config": [{}]}},
        {"IPAM": {"Config": [{"Subnet": "not a subnet"}]}},
    ],
)
def test_missing_keys_never_crash_with_a_key_error(network: dict[str, object]) -> None:
    assert bridge_gateway(network, DOCKER0) == "172.17.0.1"
    with pytest.raises(BackendError, match="TITAN_CONTAINER_HOST"):
        bridge_gateway(network, {"lo": DOCKER0["lo"]})


def test_an_operator_setting_or_another_backend_is_left_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", backend="docker", container_host="10.1.2.3")
    assert with_container_host(settings) is settings
    local = make_settings(tmp_path / "data")
    assert with_container_host(local).container_host is None
