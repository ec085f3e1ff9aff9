"""``titan`` commands for a shared service: groups, quotas, secrets, images, usage, audit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from service.cli_common import console, hub, print_rows
from service.secret_key import new_key

group_app = typer.Typer(help="Groups and their members.", no_args_is_help=True)
quota_app = typer.Typer(help="Quotas of users and groups.", no_args_is_help=True)
secret_app = typer.Typer(help="Secrets (values are never shown).", no_args_is_help=True)
image_app = typer.Typer(help="Registered images recipes may run.", no_args_is_help=True)
folder_app = typer.Typer(help="Shared folders recipes mount.", no_args_is_help=True)

OwnerOption = Annotated[str | None, typer.Option(help="a user or group; default: you")]


def add_sharing_commands(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(group_app, name="group")
    app.add_typer(quota_app, name="quota")
    app.add_typer(secret_app, name="secret")
    app.add_typer(image_app, name="image")
    app.add_typer(folder_app, name="folder")
    app.command("usage")(usage)
    app.command("audit")(audit)


# -- groups -------------------------------------------------------------------------------


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="group name (a-z, 0-9, '-')")],
    admin: Annotated[list[str] | None, typer.Option(help="a first group admin")] = None,
) -> None:
    """Create a group (admins)."""
    hub().create_group(name, admin or [])
    console.print(f"group {name} created")


@group_app.command("ls")
def group_list() -> None:
    """Your groups (every group for admins) and their members."""
    groups = hub().groups()
    rows = [
        {
            "group": g["name"],
            "members": ", ".join(f"{m['user']} ({m['role']})" for m in g["members"]),
        }
        for g in groups
    ]
    print_rows(["group", "members"], rows)


@group_app.command("add")
def group_add(
    group: str,
    user: str,
    admin: Annotated[bool, typer.Option(help="make them a group admin")] = False,
) -> None:
    """Add a member to a group, or change their role (group admins)."""
    hub().add_member(group, user, admin)
    console.print(f"{user} is a{'n admin' if admin else ' member'} of {group}")


@group_app.command("remove")
def group_remove(group: str, user: str) -> None:
    """Take a member out of a group (group admins)."""
    hub().remove_member(group, user)
    console.print(f"{user} left {group}")


# -- quotas -------------------------------------------------------------------------------


@quota_app.command("show")
def quota_show(owner: Annotated[str, typer.Argument(help="a user or group")]) -> None:
    """An owner's limits and what it holds now."""
    quota = hub().quota(owner)
    rows = [
        {"limit": key, "quota": quota["limits"][key] or "unlimited", "in use": quota["use"][key]}
        for key in ("gpus", "cpus", "memory_bytes", "resources")
    ]
    print_rows(["limit", "quota", "in use"], rows)


@quota_app.command("set")
def quota_set(
    owner: Annotated[str, typer.Argument(help="a user or group")],
    gpus: Annotated[float | None, typer.Option(help="GPUs held at once")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU cores")] = None,
    memory: Annotated[str | None, typer.Option(help="memory, e.g. 256GiB")] = None,
    resources: Annotated[int | None, typer.Option(help="resources running at once")] = None,
) -> None:
    """Set an owner's limits; those left out follow the default (admins)."""
    hub().set_quota(owner, gpus, cpus, memory, resources)
    quota_show(owner)


# -- secrets ------------------------------------------------------------------------------


def _value(from_file: Path | None) -> str:
    if from_file is not None:
        return from_file.read_text()
    if sys.stdin.isatty():
        return str(typer.prompt("value", hide_input=True))
    return sys.stdin.read().rstrip("\n")


FromFile = Annotated[Path | None, typer.Option(help="read the value from this file")]


@secret_app.command("create")
def secret_create(name: str, from_file: FromFile = None, owner: OwnerOption = None) -> None:
    """Store a secret; the value comes from a file, standard input, or a hidden prompt."""
    made = hub().create_secret(name, _value(from_file), owner)
    console.print(f"secret {made['owner']}/{made['name']} stored")


@secret_app.command("ls")
def secret_list() -> None:
    """Names of the secrets you may use (never values)."""
    print_rows(["owner", "name", "version", "updated_at"], hub().secrets())


@secret_app.command("rotate")
def secret_rotate(name: str, from_file: FromFile = None, owner: OwnerOption = None) -> None:
    """Give a secret a new value (processes get it when they next start)."""
    made = hub().rotate_secret(name, _value(from_file), owner)
    console.print(f"secret {made['owner']}/{made['name']} is at version {made['version']}")


@secret_app.command("rm")
def secret_delete(name: str, owner: OwnerOption = None) -> None:
    """Forget a secret."""
    hub().delete_secret(name, owner)
    console.print(f"secret {name} deleted")


@secret_app.command("reencrypt")
def secret_reencrypt() -> None:
    """Encrypt every secret under the first key of TITAN_SECRET_KEYS (admins)."""
    done = hub().reencrypt_secrets()
    console.print(f"{done['reencrypted']} secrets encrypted under the first key")


@secret_app.command("new-key")
def secret_new_key() -> None:
    """Print a fresh key for TITAN_SECRET_KEYS (put it first, keep the old one after)."""
    console.print(new_key())


# -- images -------------------------------------------------------------------------------


@image_app.command("register")
def image_register(
    reference: Annotated[str, typer.Argument(help="name:tag, e.g. nvcr.io/nvidia/pytorch:24.01")],
    digest: Annotated[str | None, typer.Option(help="sha256:... to pin")] = None,
    public: Annotated[bool, typer.Option(help="everyone may use it (admins)")] = False,
    owner: OwnerOption = None,
) -> None:
    """Allow recipes to run an image."""
    made = hub().register_image(reference, digest, public, owner)
    console.print(f"image {made['reference']} registered (id {made['id']})")


@image_app.command("ls")
def image_list() -> None:
    """The images your recipes may name."""
    print_rows(["id", "owner", "reference", "digest", "public"], hub().images())


@image_app.command("rm")
def image_delete(image_id: int) -> None:
    """Unregister an image by id."""
    hub().delete_image(image_id)
    console.print(f"image {image_id} unregistered")


# -- folders -----------------------------------------------------------------------------


@folder_app.command("create")
def folder_create(name: str, owner: OwnerOption = None) -> None:
    """Create an empty shared folder."""
    made = hub().create_folder(name, owner)
    console.print(f"folder {made['owner']}/{made['name']} created")


@folder_app.command("ls")
def folder_list() -> None:
    """The shared folders you may mount."""
    print_rows(["owner", "name", "created_at"], hub().folders())


@folder_app.command("rm")
def folder_delete(name: str, owner: OwnerOption = None) -> None:
    """Forget a shared folder (its files stay on the node)."""
    hub().delete_folder(name, owner)
    console.print(f"folder {name} deleted")


# -- usage and audit ----------------------------------------------------------------------


def usage(
    start: Annotated[str | None, typer.Option("--from", help="first UTC day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last UTC day")] = None,
    owner: Annotated[str | None, typer.Option(help="one user or group")] = None,
) -> None:
    """GPU-hours and CPU-hours per owner and day (default: the last 7 days)."""
    report = hub().usage(start, end, owner)
    print_rows(["day", "owner", "gpu_hours", "cpu_hours"], report["days"])


def audit(
    actor: Annotated[str | None, typer.Option(help="one user's calls")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
) -> None:
    """Mutating API calls: who, what, when and the result (admins)."""
    print_rows(["at", "actor", "method", "path", "status"], hub().audit(actor, limit=limit))
