"""Where processes in containers reach the control plane: the host's address on the
engine's default bridge.

Engines disagree on how they report it. Docker 20.10 on a fresh Debian machine
lists the bridge network as ``{"Config": [{"Subnet": "172.17.0.0/16"}]}`` with
no ``Gateway`` key, while its ``docker0`` interface carries ``172.17.0.1``.
So the gateway is read from the engine where it is reported, and otherwise
from the address of the bridge's own interface on this host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from service.config import Settings
from service.errors import BackendError

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
DEFAULT_BRIDGE_INTERFACE = "docker0"
HOW_TO_SET = "set TITAN_CONTAINER_HOST to an address of this machine that containers reach"


def bridge_gateway(network: Mapping[str, Any], interfaces: Mapping[str, Sequence[Any]]) -> str:
    """The host's address on a bridge network, from its ``docker network inspect`` answer.

    ``interfaces`` maps interface names to their addresses (``psutil.net_if_addrs()``).
    Uses the IPAM gateway where the engine reports one, else the IPv4 address of
    the bridge's interface that lies in the network's subnet. Raises BackendError
    naming what was missing and what to set when neither is there.
    """
    configs = (network.get("IPAM") or {}).get("Config") or []
    for config in configs:
        gateway = (config or {}).get("Gateway")
        if gateway:
            return str(gateway).split("/", 1)[0]
    options = network.get("Options") or {}
    interface = options.get(BRIDGE_NAME_OPTION) or DEFAULT_BRIDGE_INTERFACE
    subnets = [_subnet(config) for config in configs]
    for address in interfaces.get(interface, []):
        if getattr(address, "family", None) != socket.AF_INET:
            continue
        ip = ipaddress.ip_address(address.address)
        if not any(subnets) or any(s is not None and ip in s for s in subnets):
            return str(ip)
    name = network.get("Name") or "bridge"
    raise BackendError(
        f"cannot tell where containers reach this machine: the engine's {name!r} network "
        f"reports no IPAM gateway and interface {interface!r} has no IPv4 address here; "
        f"{HOW_TO_SET}"
    )


def discover(client: Any) -> str:
    """The address containers of ``client``'s engine reach this host at (its default
    bridge's gateway). Raises BackendError with what to set when it cannot be found."""
    import psutil

    try:
        network = client.api.inspect_network("bridge")
    except Exception as exc:  # an engine without the default bridge, or unreachable
        raise BackendError(
            f"cannot inspect the engine's 'bridge' network ({exc}); {HOW_TO_SET}"
        ) from exc
    return bridge_gateway(network, psutil.net_if_addrs())


def with_container_host(settings: Settings) -> Settings:
    """``settings`` with ``container_host`` found from the engine when the docker backend
    runs and the operator set none; otherwise ``settings`` unchanged."""
    if settings.backend != "docker" or settings.container_host:
        return settings
    import docker

    client = docker.from_env()
    try:
        host = discover(client)
    finally:
        client.close()
    return settings.model_copy(update={"container_host": host})


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _subnet(config: Mapping[str, Any] | None) -> Subnet | None:
    try:
        return ipaddress.ip_network(str((config or {})["Subnet"]), strict=False)
    except (KeyError, ValueError):
        return None
