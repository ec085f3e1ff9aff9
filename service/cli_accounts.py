"""``titan`` commands for accounts: login, whoami, users and tokens."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from service.cli_common import State, console, hub, print_rows
from service.client import Hub, defaults

user_app = typer.Typer(help="Manage users (admins).", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def add_account_commands(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def _secret(prompt: str) -> str:
    """A secret from a hidden prompt, or the first line of standard input when piped."""
    if sys.stdin.isatty():
        return str(typer.prompt(prompt, hide_input=True)).strip()
    return sys.stdin.readline().strip()


# -- who you are --------------------------------------------------------------------------


def login(
    url: Annotated[str | None, typer.Argument(help="the server (default: asked)")] = None,
    token: Annotated[
        str | None, typer.Option(help="the token (default: asked, or read from stdin)")
    ] = None,
) -> None:
    """Check a URL and token against the server and save them for later commands
    (``<config dir>/login.json``, readable by you only)."""
    url = url or State.url
    if url is None:
        url = defaults.server_url()
        if sys.stdin.isatty():
            url = str(typer.prompt("Titan URL", default=url))
    secret = token or State.token or _secret("token")
    if not secret:
        raise typer.BadParameter("a token is needed: `titan token create` makes one")
    client = Hub(url.rstrip("/"), secret)
    me = client.me()
    path = defaults.save_login(defaults.Login(client.url, secret))
    console.print(f"logged in to {client.url} as {me['name']} (saved to {path})")


def logout() -> None:
    """Forget the saved login."""
    if defaults.forget_login():
        console.print(f"forgot the login saved in {defaults.login_file()}")
    else:
        console.print("no login was saved")


def whoami() -> None:
    """Who the token in use belongs to, and on which server."""
    client = hub()
    me = client.me()
    role = "admin" if me["is_admin"] else "user"
    console.print(f"{me['name']} ({role}) at {client.url}")
    if me.get("resource_id"):
        console.print(f"a resource token of resource {me['resource_id']}")
    if me["groups"]:
        admin_of = set(me["group_admin_of"])
        groups = ", ".join(g + (" (admin)" if g in admin_of else "") for g in me["groups"])
        console.print(f"groups: {groups}")


# -- users --------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="user name (a-z, 0-9, '-')")],
    admin: Annotated[bool, typer.Option(help="make the user an admin")] = False,
) -> None:
    """Create a user and print its first token (shown once)."""
    result = hub().create_user(name, admin)
    console.print(f"user {result['name']} created; token (shown once):\n{result['token']}")


@user_app.command("ls")
def user_list() -> None:
    """Every user, and whether they are admins or disabled."""
    print_rows(["name", "is_admin", "disabled", "created_at"], hub().users())


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Refuse all of a user's tokens at once and stop every resource they own."""
    result = hub().disable_user(name)
    stopped = ", ".join(result["stopped"]) or "none"
    console.print(f"user {name} disabled; resources stopping: {stopped}")


@user_app.command("enable")
def user_enable(name: str) -> None:
    """Let a disabled user's tokens work again (their resources stay stopped)."""
    hub().enable_user(name)
    console.print(f"user {name} enabled")


@user_app.command("delete")
def user_delete(
    name: str,
    transfer_to: Annotated[
        str | None,
        typer.Option(help="user or group that gets their resources, secrets, images, folders"),
    ] = None,
) -> None:
    """Delete a user and their tokens; refused while they own anything, unless
    --transfer-to names who gets it (handed-over resources are stopped)."""
    result = hub().delete_user(name, transfer_to)
    moved = [f"{n} {noun}" for noun, n in result.items() if isinstance(n, int) and n]
    if transfer_to and moved:
        console.print(f"user {name} deleted; {', '.join(moved)} handed to {transfer_to}")
    else:
        console.print(f"user {name} deleted")


# -- tokens -------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="what the token is for")] = "",
    user: Annotated[str | None, typer.Option(help="admins: create it for this user")] = None,
    expires_in: Annotated[
        int | None, typer.Option(help="seconds until it expires (default: never)", min=1)
    ] = None,
) -> None:
    """Create an API token and print it (shown once)."""
    result = hub().create_token(name, user, expires_in)
    until = f", expires {result['expires_at']}" if result.get("expires_at") else ""
    console.print(f"token for {result['user']} (id {result['id']}{until}; shown once):")
    console.print(result["token"], highlight=False)


@token_app.command("ls")
def token_list(
    user: Annotated[str | None, typer.Option(help="admins: this user's tokens")] = None,
) -> None:
    """Your tokens (never their secrets): id, name, resource, dates."""
    columns = ["id", "name", "resource_id", "created_at", "expires_at", "last_used_at"]
    rows = [{**t, "expires_at": _expiry(t)} for t in hub().tokens(user)]
    print_rows(columns, rows)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="its id (`titan token ls`)")],
) -> None:
    """Revoke a token: it is refused from its next use."""
    hub().revoke_token(token_id)
    console.print(f"token {token_id} revoked")


def _expiry(token: dict[str, Any]) -> str:
    if token.get("expires_at") is None:
        return "never"
    return f"{token['expires_at']} (expired)" if token.get("expired") else token["expires_at"]
