"""The Docker backend: every process is a container on its resource's own network.

Names are deterministic (``<prefix>-<resource id>-<process>``) and every
container carries labels (``titan.resource_id``, ``titan.process``,
``titan.role``, ``titan.owner``, ``titan.resource``, ``titan.generation``), so
a restarted control plane finds what it started. Each resource has one
user-defined network; on it every process is reachable by its process name,
so a worker or a notebook reaches the scheduler as ``scheduler``. Servers are
published on ``publish_host`` (127.0.0.1 by default) only: the scheduler on
the port reserved before it starts, its dashboard and JupyterLab on free
ports. A workspace's home is a named volume that survives stop and start.

Every docker-py call blocks, so each runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tarfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import DeviceRequest, Mount

from service.backends.base import (
    Backend,
    Checkpoint,
    FolderMount,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Started,
    ended_while_starting,
    entrypoint_args,
    process_environment,
)
from service.backends.log_times import last_lines
from service.backends.ports import free_ports
from service.errors import BackendError
from workers.entrypoint import READY_MARKER

log = logging.getLogger(__name__)
HOME = "/home/titan"
OUTPUTS = "/outputs"  # a job's output folder, bound from the host
# A process's secret files: copied into its container before it starts, gone with it.
# Readable by the container's user whatever its uid (the container is the resource's own).
SECRETS_DIR = "/run/titan/secrets"
MANAGED = "titan.managed"


class DockerBackend(Backend):
    """Runs processes as containers of one Docker engine."""

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        prefix: str = "titan",
        publish_host: str = "127.0.0.1",
        image: str = "titan/cpu:latest",
        gpu_image: str = "titan/cuda:latest",
        api_url: str | None = None,
        start_timeout: float = 120.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.client = client or docker.from_env()
        self.api = self.client.api
        self.prefix = prefix
        self.publish_host = publish_host
        self.public_host = publish_host
        self.image = image
        self.gpu_image = gpu_image
        self.api_url = api_url  # TITAN_URL as containers reach it
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._network_lock = threading.Lock()

    # -- names ------------------------------------------------------------------------------

    def container_name(self, resource_id: str, process: str) -> str:
        """The container of ``process`` of a resource."""
        return f"{self.prefix}-{resource_id[:12]}-{process}"

    def network_name(self, resource_id: str) -> str:
        """The network every process of a resource is on."""
        return f"{self.prefix}-{resource_id[:12]}"

    def home_volume(self, resource_id: str) -> str:
        """The volume holding a workspace's home directory."""
        return f"{self.prefix}-home-{resource_id[:12]}"

    # -- the contract -------------------------------------------------------------------------

    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Ports free on the publish host now: a process listens on the same numbers in
        its container, and those it publishes appear there under them."""
        return await asyncio.to_thread(free_ports, self.publish_host, wanted)

    def peer_host(self, name: str) -> str:
        """Its name: every process of a resource is on the resource's own network."""
        return name

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Create the container, checkpoint its handle, start it, wait until it serves."""
        handle = await asyncio.to_thread(self._create, spec)
        await checkpoint(handle)
        try:
            await asyncio.to_thread(self.api.start, handle["id"])
        except APIError as exc:
            raise BackendError(f"{spec.name}: docker could not start it: {_explain(exc)}") from exc
        await self._wait_ready(spec, handle)
        log.info(
            "started %s of %s (container %s)", spec.name, spec.resource_id, handle["container"]
        )
        return Started(handle=handle)

    async def stop(self, handle: Handle) -> None:
        """Stop the container (SIGTERM, SIGKILL after the grace period); no-op if gone.

        A stopped container is kept (its logs and exit code stay readable) until
        the process starts again or its resource is deleted.
        """
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self.api.stop, handle["id"], timeout=int(self.stop_timeout))

    async def status(self, handle: Handle) -> ProcessState:
        """Running, or exited with its code and, where Docker knows it, why."""
        try:
            info = await asyncio.to_thread(self.api.inspect_container, handle["id"])
        except NotFound:
            return ProcessState(running=False, reason="its container no longer exists")
        state = info.get("State") or {}
        if state.get("Running"):
            return ProcessState(running=True)
        code = state.get("ExitCode")
        return ProcessState(running=False, exit_code=code, reason=_why(info))

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The container's output from byte ``offset`` on, or its last ``tail`` lines."""
        try:
            raw: bytes = await asyncio.to_thread(
                self.api.logs, handle["id"], stdout=True, stderr=True
            )
        except NotFound:
            return LogChunk("", offset)
        if tail is not None:
            return last_lines(raw, tail, len(raw))
        start = min(offset, len(raw))
        return LogChunk(raw[start:].decode(errors="replace"), len(raw), start)

    async def line_times(self, handle: Handle) -> list[tuple[int, float]]:
        """When each output line began, as the engine recorded it (``docker logs
        --timestamps``)."""
        try:
            stamped: bytes = await asyncio.to_thread(
                self.api.logs, handle["id"], stdout=True, stderr=True, timestamps=True
            )
        except NotFound:
            return []
        return engine_line_times(stamped)

    async def adopt(self) -> list[Handle]:
        """Handles of the running containers this backend's prefix labels."""
        found = await asyncio.to_thread(
            self.api.containers, filters={"label": f"{MANAGED}={self.prefix}"}
        )
        return [_handle(c["Id"], _name_of(c), c.get("Labels") or {}) for c in found]

    async def forget(self, resource_id: str) -> None:
        """Remove a deleted resource's containers, network and home volume."""
        await asyncio.to_thread(self._forget, resource_id)

    async def close(self) -> None:
        """Close the connection to the engine (containers keep running)."""
        await asyncio.to_thread(self.client.close)

    # -- in threads -----------------------------------------------------------------------------

    def _create(self, spec: ProcessSpec) -> Handle:
        image = spec.image or (self.gpu_image if spec.gpus else self.image)
        self._require_image(image)
        network = self._ensure_network(spec.resource_id)
        name = self.container_name(spec.resource_id, spec.name)
        self._remove(name)  # what an earlier start of this process left
        labels = {
            MANAGED: self.prefix,
            "titan.resource_id": spec.resource_id,
            "titan.process": spec.name,
            "titan.role": spec.role,
            **{f"titan.{key}": value for key, value in spec.labels.items()},
        }
        command, env = self._command(spec)
        mounts = []
        if spec.home:
            mounts.append(Mount(HOME, self._ensure_home(spec.resource_id), type="volume"))
        for shared in spec.folders:
            volume = self._ensure_folder_volume(shared)
            mounts.append(Mount(shared.path, volume, type="volume", read_only=shared.read_only))
        if spec.output_dir:
            folder = Path(spec.output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            # The image's user, whatever its uid, writes here; the folders above stay private.
            folder.chmod(0o777)
            mounts.append(Mount(OUTPUTS, spec.output_dir, type="bind"))
        host_config = self.api.create_host_config(
            port_bindings={port: (self.publish_host, port) for port in spec.published},
            nano_cpus=int(spec.cpu * 1e9) or None,
            mem_limit=spec.memory_bytes or None,
            device_requests=(
                [DeviceRequest(device_ids=list(spec.gpus), capabilities=[["gpu"]])]
                if spec.gpus
                else None
            ),
            mounts=mounts or None,
            init=True,
        )
        networking = self.api.create_networking_config(
            {network: self.api.create_endpoint_config(aliases=[spec.name])}
        )
        try:
            created = self.api.create_container(
                image,
                command=command,
                name=name,
                hostname=spec.name,
                environment=env,
                labels=labels,
                ports=list(spec.published),
                host_config=host_config,
                networking_config=networking,
                working_dir=spec.working_directory or (HOME if spec.home else None),
            )
        except APIError as exc:
            raise BackendError(
                f"{spec.name}: docker refused the container: {_explain(exc)}"
            ) from exc
        if spec.secret_files:  # into the container only, before it starts
            self.api.put_archive(created["Id"], "/", _secret_archive(spec.secret_files))
        return _handle(created["Id"], name, labels)

    def _command(self, spec: ProcessSpec) -> tuple[list[str], dict[str, str]]:
        """The entrypoint's arguments and the container's environment."""
        env = process_environment(spec, SECRETS_DIR)
        if self.api_url and "TITAN_URL" in env:
            env["TITAN_URL"] = self.api_url
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
        if spec.home:
            env["HOME"] = HOME
        if spec.output_dir:
            env["TITAN_OUTPUT_DIR"] = OUTPUTS
        if spec.start_script:
            env["TITAN_START_SCRIPT"] = spec.start_script
        return entrypoint_args(spec, "0.0.0.0"), env

    def _require_image(self, image: str) -> None:
        try:
            self.api.inspect_image(image)
        except ImageNotFound:
            raise BackendError(
                f"image {image!r} is not on this node: build it with `titan images build` "
                f"or `docker pull {image}`, or name another image in the recipe's spec.image"
            ) from None

    def _ensure_network(self, resource_id: str) -> str:
        """The id of the resource's network, created on first use (once, even when
        its processes start at the same moment)."""
        name = self.network_name(resource_id)
        with self._network_lock:
            found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            if found:
                return str(found[0]["Id"])
            created = self.api.create_network(
                name,
                driver="bridge",
                labels={MANAGED: self.prefix, "titan.resource_id": resource_id},
            )
            return str(created["Id"])

    def _ensure_home(self, resource_id: str) -> str:
        name = self.home_volume(resource_id)
        try:
            self.api.inspect_volume(name)
        except NotFound:
            self.api.create_volume(
                name, labels={MANAGED: self.prefix, "titan.resource_id": resource_id}
            )
        return name

    def _ensure_folder_volume(self, folder: FolderMount) -> str:
        """The named volume of a shared folder, bound to its folder on this node."""
        name = f"{self.prefix}-folder-{folder.owner}-{folder.name}"
        try:
            self.api.inspect_volume(name)
        except NotFound:
            self.api.create_volume(
                name,
                driver="local",
                driver_opts={"type": "none", "o": "bind", "device": folder.host_path},
                labels={MANAGED: self.prefix, "titan.folder": f"{folder.owner}/{folder.name}"},
            )
        return name

    def _remove(self, container: str) -> None:
        with contextlib.suppress(NotFound):
            self.api.remove_container(container, force=True)

    def _forget(self, resource_id: str) -> None:
        label = f"titan.resource_id={resource_id}"
        for container in self.api.containers(all=True, filters={"label": label}):
            self._remove(container["Id"])
        for network in self.api.networks(filters={"label": label}):
            with contextlib.suppress(NotFound):
                self.api.remove_network(network["Id"])
        for volume in self.api.volumes(filters={"label": label}).get("Volumes") or []:
            with contextlib.suppress(NotFound):
                self.api.remove_volume(volume["Name"], force=True)

    # -- readiness ---------------------------------------------------------------------------

    async def _wait_ready(self, spec: ProcessSpec, handle: Handle) -> None:
        """Until the container prints ``READY_MARKER`` (its output read as it is written)."""
        try:
            ready = await asyncio.wait_for(
                asyncio.to_thread(self._ready_line, handle), self.start_timeout
            )
        except TimeoutError:
            raise BackendError(
                f"{spec.name} was not ready after {self.start_timeout:.0f}s"
            ) from None
        if not ready:  # its output ended: the container exited while starting
            raise await ended_while_starting(self, handle, spec.name)

    def _ready_line(self, handle: Handle) -> bool:
        """Follow the container's output until the ready line (False if it ends first)."""
        stream = self.api.logs(handle["id"], stdout=True, stderr=True, stream=True, follow=True)
        pending = b""
        try:
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if any(READY_MARKER.encode() in line for line in lines):
                    return True
        finally:
            stream.close()
        return False


def engine_line_times(stamped: bytes) -> list[tuple[int, float]]:
    """``(byte offset, epoch seconds)`` of each line of a container's output, from the
    engine's output with every line prefixed by its RFC 3339 time."""
    marks, offset = [], 0
    for line in stamped.splitlines(keepends=True):
        stamp, _, text = line.partition(b" ")
        with contextlib.suppress(ValueError):
            marks.append((offset, _rfc3339(stamp.decode())))
        offset += len(text)
    return marks


def _rfc3339(stamp: str) -> float:
    """Epoch seconds of the engine's ``2026-12-07T03:00:00.123456789Z`` (nanoseconds cut
    to what ``datetime`` holds)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _secret_archive(files: dict[str, str]) -> bytes:
    """A tar of ``SECRETS_DIR`` holding ``files``, for ``put_archive`` at /."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        parts = SECRETS_DIR.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            folder = tarfile.TarInfo("/".join(parts[:depth]))
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755 if depth < len(parts) else 0o555
            archive.addfile(folder)
        for name, value in files.items():
            data = value.encode()
            entry = tarfile.TarInfo(f"{SECRETS_DIR.strip('/')}/{name}")
            entry.size, entry.mode = len(data), 0o444
            archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def _handle(container_id: str, name: str, labels: dict[str, str]) -> Handle:
    return {
        "backend": "docker",
        "id": container_id,
        "container": name,
        "resource_id": labels.get("titan.resource_id"),
        "name": labels.get("titan.process"),
        "role": labels.get("titan.role"),
    }


def _name_of(container: dict[str, Any]) -> str:
    """A listed container's name (the engine lists names with a leading '/'; the id if none)."""
    names = container.get("Names") or [container["Id"]]
    return str(names[0]).lstrip("/")


def _why(info: dict[str, Any]) -> str:
    """Why a container ended, in words a user can act on."""
    state = info.get("State") or {}
    limit = (info.get("HostConfig") or {}).get("Memory") or 0
    if state.get("OOMKilled"):
        size = f" of {limit / 1024**3:.1f} GiB" if limit else ""
        return (
            f"killed: out of memory (its limit{size} was reached); give it more memory "
            "in the recipe (resources.memory, or worker.memory for a cluster's workers)"
        )
    if state.get("Error"):
        return str(state["Error"])
    if state.get("ExitCode") == 137:
        return "killed (SIGKILL)"
    return ""


def _explain(exc: APIError) -> str:
    return str(exc.explanation or exc)
