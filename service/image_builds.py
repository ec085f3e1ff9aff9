"""Building Titan's container images from this source tree (``titan images build``).

Images are tagged ``titan/<kind>:<version>`` and ``titan/<kind>:latest``, the
version being this package's, so containers run the code the control plane
runs. ``base_image`` replaces the Dockerfile's upstream base (for machines
with no registry, a locally imported one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

KINDS = ("cpu", "cuda")
SOURCE_ROOT = Path(__file__).resolve().parents[1]


class ImageBuildError(Exception):
    """An image could not be built; the message says why."""


def image_tag(kind: str, tag: str | None = None) -> str:
    """The name of Titan's ``kind`` image at ``tag`` (default: this version)."""
    return f"titan/{kind}:{tag or version('titan')}"


def pip_cert() -> str | None:
    """The CA bundle the host's pip trusts, if one is configured."""
    configured = os.environ.get("PIP_CERT")
    if not configured:
        found = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.cert"],
            capture_output=True,
            text=True,
            check=False,
        )
        configured = found.stdout.strip() if found.returncode == 0 else ""
    return configured if configured and Path(configured).is_file() else None


def build_command(kind: str, base_image: str | None = None, root: Path = SOURCE_ROOT) -> list[str]:
    """The ``docker build`` command line for ``kind``."""
    if kind not in KINDS:
        raise ImageBuildError(f"unknown image {kind!r}; choose one of: {', '.join(KINDS)}")
    dockerfile = root / "images" / kind / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageBuildError(
            f"{dockerfile} not found: build images from a clone of the Titan repository"
        )
    command = ["docker", "build", "-f", str(dockerfile)]
    command += ["-t", image_tag(kind), "-t", image_tag(kind, "latest")]
    if base_image:
        command += ["--build-arg", f"BASE_IMAGE={base_image}"]
    return [*command, str(root)]


def build(kind: str, base_image: str | None = None, root: Path = SOURCE_ROOT) -> str:
    """Build the ``kind`` image (output streams to the terminal); its tag."""
    command = build_command(kind, base_image, root)
    if shutil.which("docker") is None:
        raise ImageBuildError("the docker command is not installed; install Docker first")
    context = root / "images" / "build"
    context.mkdir(exist_ok=True)
    cert = pip_cert()
    if cert:
        shutil.copyfile(cert, context / "ca.pem")
    else:
        (context / "ca.pem").write_bytes(b"")
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"docker build of {kind} failed (exit code {result.returncode})")
    return image_tag(kind)
