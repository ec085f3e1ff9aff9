"""The ``titan`` command: run the server, apply recipes, watch and manage resources."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from service.cli_accounts import add_account_commands
from service.cli_common import Owner, Ref, State, console, errors, hub, read_recipe, ref
from service.cli_import import add_import_commands
from service.cli_logs import add_logs_command
from service.cli_runs import add_runs_commands
from service.cli_sharing import add_sharing_commands
from service.cli_tables import alerts_table, top_view
from service.client import ResourceRef, TitanClientError
from service.client.extras import needs

app = typer.Typer(help="Titan: self-hosted GPU compute from JSON recipes.", no_args_is_help=True)
images_app = typer.Typer(help="Build Titan's container images.", no_args_is_help=True)
app.add_typer(images_app, name="images")
add_sharing_commands(app)
add_account_commands(app)
add_logs_command(app)
add_import_commands(app)
add_runs_commands(app)
FINISHED = {"stopped", "succeeded", "failed"}  # nothing runs
JOB_DONE = {"succeeded", "failed"}  # a job's program exited


def _runs_until(resource: dict[str, Any]) -> set[str]:
    """The statuses a start of ``resource`` ends in: a job's end, else running."""
    return JOB_DONE if resource["type"] == "job" else {"running"}


def _wait_started(target: ResourceRef, resource: dict[str, Any], timeout: float) -> None:
    """Follow ``resource`` until it runs (a job: until it ends); exit 1 unless it runs or
    its job succeeded."""
    if resource["status"] in _runs_until(resource):  # a finished job run again
        _wait_for_change(target, resource["status_changed_at"], timeout)
    final = hub().wait(
        target, _runs_until(resource), timeout, show_transition, generation=resource["generation"]
    )
    if final["status"] not in ("running", "succeeded"):
        raise typer.Exit(1)


@app.callback()
def options(
    url: Annotated[str | None, typer.Option(help="API URL (default: $TITAN_URL)")] = None,
    token: Annotated[str | None, typer.Option(help="API token (default: $TITAN_TOKEN)")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Options for every command."""
    State.url, State.token, State.debug = url, token, debug


def show_transition(resource: dict[str, Any]) -> None:
    """Print one status change as it happens."""
    stamp = time.strftime("%H:%M:%S")
    console.print(f"{stamp}  [bold]{resource['status']:<9}[/]  {resource['status_reason']}")


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="listen address ($TITAN_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port, 0 for any ($TITAN_PORT)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory ($TITAN_DATA_DIR)")] = None,
) -> None:
    """Run the Titan API server and reconciler (SQLite and the local backend by default)."""
    with needs("titan server", "server,workers"):
        from service.config import Settings
        from service.server import serve

    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    serve(Settings(**{k: v for k, v in overrides.items() if v is not None}))


@app.command()
def apply(
    file: Annotated[str, typer.Argument(help="recipe JSON file, or - for stdin")],
    wait: Annotated[bool, typer.Option(help="follow status until running")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 600,
) -> None:
    """Create or update the resource a recipe describes."""
    result = hub().apply(read_recipe(file))
    resource = result["resource"]
    target = ResourceRef(resource["type"], resource["name"], resource["owner"])
    console.print(f"{target} {result['action']} (generation {resource['generation']})")
    if wait:
        _wait_started(target, resource, timeout)


@app.command()
def plan(file: Annotated[str, typer.Argument(help="recipe JSON file, or - for stdin")]) -> None:
    """Show what applying a recipe would change and restart, applying nothing."""
    result = hub().plan(read_recipe(file))
    console.print(f"action: [bold]{result['action']}[/]")
    table = Table("field", "old", "new")
    for change in result["changes"]:
        table.add_row(change["path"], json.dumps(change["old"]), json.dumps(change["new"]))
    if result["changes"]:
        console.print(table)
    for verb, names in result["processes"].items():
        if names and verb != "unchanged":
            console.print(f"{verb}: {', '.join(names)}")


@app.command("ls")
def list_resources(
    type: Annotated[str | None, typer.Option("--type", help="only this type")] = None,
) -> None:
    """List your resources."""
    table = Table("resource", "owner", "status", "workers", "target", "gen", "reason")
    for item in hub().list(type):
        table.add_row(
            f"{item['type']}/{item['name']}",
            item["owner"],
            item["status"],
            workers_text(item),
            item["target"],
            str(item["generation"]),
            item["status_reason"],
        )
    console.print(table)


@app.command()
def nodes() -> None:
    """Show each node: its address and state, CPUs, memory and GPUs, what is allocated,
    who holds each GPU."""
    table = Table("node", "address", "state", "CPUs", "memory GiB", "GPUs")
    shown = hub().nodes()
    for node in shown:
        gpus = ", ".join(
            f"{g['index']}: {g['model']} ({g['holder'] or 'free'})" for g in node["gpus"]
        )
        state = node.get("state", "up")
        if node.get("reason"):
            state += f": {node['reason']}"
        table.add_row(
            node["name"],
            node.get("address") or "",
            state if node.get("schedulable", True) else f"[yellow]{state}[/]",
            promise_text(node, "cpu", "cpus", "cpu", 1, "g"),
            promise_text(node, "memory", "memory_bytes", "memory_bytes", 1024**3, ".1f"),
            gpus or "none",
        )
    console.print(table)
    if any(n.get("overcommit", {}).get("cpu", 1) != 1 for n in shown):
        console.print(
            "CPUs are overcommitted: requests may add up to the node's CPUs times the "
            "overcommit (TITAN_CPU_OVERCOMMIT), since most processes use less than they ask; "
            "memory and GPUs only as far as their own overcommit says."
        )


def promise_text(
    node: dict[str, Any], kind: str, field: str, amount: str, unit: float, form: str
) -> str:
    """``2 x 4 = 8 promised, 3 allocated`` (``2, 1 allocated`` where nothing is
    overcommitted): ``field`` is the node's capacity, ``amount`` its key in allocated and
    promised, ``kind`` its key in overcommit."""
    have = node[field] / unit
    allocated = node["allocated"][amount] / unit
    factor = node.get("overcommit", {}).get(kind, 1)
    if factor == 1:
        return f"{have:{form}}, {allocated:{form}} allocated"
    promised = node["promised"][amount] / unit
    return f"{have:{form}} x {factor:g} = {promised:{form}} promised, {allocated:{form}} allocated"


@app.command()
def top(
    once: Annotated[bool, typer.Option(help="print the table once and exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 2.0,
) -> None:
    """Live table of running resources: each GPU's utilisation, memory, temperature, power;
    and each deployment's requests, errors and latency through the front door."""
    client = hub()
    if once:
        console.print(top_view(client.current()))
        return
    with Live(top_view(client.current()), console=console, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(top_view(client.current()), refresh=True)


@app.command()
def metrics() -> None:
    """Metric names telemetry queries may ask for: the standard ones and any stored."""
    table = Table("metric", "description")
    for metric in hub().metric_names():
        table.add_row(metric["name"], metric["description"] or "(reported by a resource)")
    console.print(table)


@app.command()
def alerts(
    state: Annotated[str | None, typer.Option(help="firing or resolved")] = None,
) -> None:
    """Alert events on your resources (all for admins), newest first."""
    console.print(alerts_table(hub().alerts(state)))


@app.command()
def get(
    resource: Ref,
    owner: Owner = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show one resource: status, processes and endpoints."""
    item = hub().get(ref(resource, owner))
    if as_json:
        console.print_json(data=item)
        return
    console.print(
        f"[bold]{item['type']}/{item['name']}[/] (owner {item['owner']}, "
        f"generation {item['generation']})"
    )
    console.print(f"status: {item['status']} - {item['status_reason']} (target {item['target']})")
    if item.get("workers") is not None and item["type"] != "deployment":
        console.print(f"workers: {workers_text(item)} ready")
    for name, address in item["endpoints"].items():
        # Every endpoint on one line, never folded: a dashboard link's ticket must copy whole.
        console.print(f"{name}: {address}", soft_wrap=True, markup=False)
    if item["type"] == "deployment" and item.get("workers") is not None:
        console.print(f"replicas: {workers_text(item)} healthy")
    table = Table("process", "state", "health", "exit code", "started")
    for process in item["processes"]:
        code = "" if process["exit_code"] is None else str(process["exit_code"])
        health = process.get("health") or ""
        table.add_row(process["name"], process["state"], health, code, process["started_at"])
    console.print(table)


def _wait_for_change(target: ResourceRef, since: str, timeout: float) -> None:
    """Poll until the status of ``target`` changed after ``since`` (a status time)."""
    deadline = time.monotonic() + timeout
    while hub().get(target)["status_changed_at"] == since:
        if time.monotonic() > deadline:
            raise TitanClientError(f"{target} did not start within {timeout:.0f}s")
        time.sleep(0.25)


def workers_text(item: dict[str, Any]) -> str:
    """``2/3``: workers that joined their cluster of those it asks for ("" without)."""
    workers = item.get("workers")
    return f"{workers['ready']}/{workers['wanted']}" if workers else ""


def _act(verb: str, resource: str, owner: str | None) -> tuple[ResourceRef, dict[str, Any]]:
    target = ref(resource, owner)
    item: dict[str, Any] = getattr(hub(), verb)(target)
    console.print(f"{item['type']}/{item['name']}: {verb} requested")
    return ResourceRef(item["type"], item["name"], item["owner"]), item


Wait = Annotated[bool, typer.Option(help="follow the status until it is done")]
Timeout = Annotated[float, typer.Option(help="seconds to wait")]


@app.command()
def start(resource: Ref, owner: Owner = None, wait: Wait = False, timeout: Timeout = 600) -> None:
    """Run a stopped resource (a finished job runs again). With --wait: until it runs
    (a job: until it ends); exit code 1 if it fails."""
    target, item = _act("start", resource, owner)
    if wait:
        _wait_started(target, item, timeout)


@app.command()
def stop(resource: Ref, owner: Owner = None, wait: Wait = False, timeout: Timeout = 600) -> None:
    """Stop every process of a resource; its recipe is kept. With --wait: until nothing
    runs."""
    target, _ = _act("stop", resource, owner)
    if wait:
        hub().wait(target, FINISHED, timeout, show_transition)


@app.command()
def delete(resource: Ref, owner: Owner = None, wait: Wait = False, timeout: Timeout = 600) -> None:
    """Stop a resource and forget it. With --wait: until it is gone."""
    target, _ = _act("delete", resource, owner)
    if wait:
        hub().wait_gone(target, timeout)
        console.print(f"{target}: deleted")


@app.command()
def rollback(
    resource: Ref, owner: Owner = None, wait: Wait = False, timeout: Timeout = 600
) -> None:
    """Return a deployment (deployment/NAME) to its previous recipe: applied again as a new
    generation and rolled out one replica at a time. With --wait: until it runs as that
    recipe; exit code 1 if it does not."""
    target = ref(resource, owner)
    result = hub().rollback(target)
    item = result["resource"]
    console.print(
        f"{target}: rolling back to the previous recipe (generation {item['generation']})"
    )
    if wait:
        _wait_started(target, item, timeout)


@app.command()
def outputs(
    resource: Ref,
    owner: Owner = None,
    get: Annotated[
        str | None, typer.Option("--get", help="download this file (a path as listed)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="where to save it (default: its name)")
    ] = None,
    run: Annotated[
        int | None, typer.Option("--run", help="of this run (`titan runs`); default: the latest")
    ] = None,
) -> None:
    """List the files a job wrote to $TITAN_OUTPUT_DIR in a run, or download one with
    --get."""
    target = ref(resource, owner)
    if get is not None:
        to = output or Path(get.rsplit("/", 1)[-1])
        written = hub().download_output(target, get, to, run)
        console.print(f"{get}: {written} bytes saved to {to}")
        return
    found = hub().outputs(target, run)
    if found.get("run") is not None:
        console.print(f"run {found['run']}:")
    table = Table("path", "bytes", "modified")
    for item in found["files"]:
        table.add_row(item["path"], str(item["size"]), item["modified"])
    console.print(table if found["files"] else f"{target} has written no outputs")
    if found["skipped"]:
        console.print(f"not served (links or special files): {', '.join(found['skipped'])}")
    if found["truncated"]:
        console.print("the list stops at 10,000 files")


@app.command()
def demo(
    workers: Annotated[int, typer.Option(help="Dask workers")] = 2,
    rows: Annotated[int, typer.Option(help="training rows")] = 200_000,
) -> None:
    """Start a server if none runs, run a Dask cluster, compute and train on it, tear down."""
    from service.demo import run_demo

    run_demo(hub(), console, show_transition, workers=workers, rows=rows)


@images_app.command("build")
def images_build(
    kinds: Annotated[list[str] | None, typer.Argument(help="cpu, cuda (default: cpu)")] = None,
    base_image: Annotated[
        str | None, typer.Option(help="base to build on instead of the upstream one")
    ] = None,
) -> None:
    """Build images from this source tree, tagged with Titan's version and latest."""
    from service.image_builds import ImageBuildError, build

    for kind in kinds or ["cpu"]:
        try:
            tag = build(kind, base_image)
        except ImageBuildError as exc:
            errors.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        console.print(f"built {tag}")


def main() -> None:
    """Entry point: one-line errors and a non-zero exit, tracebacks only with --debug."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
        if isinstance(code, int) and code:
            sys.exit(code)
    except TitanClientError as exc:
        if State.debug:
            raise
        errors.print(f"[red]error:[/] {exc.message}", highlight=False)
        problems = exc.details if isinstance(exc.details, list) else []
        for problem in problems:
            got = problem.get("value")  # None: nothing to show (a missing field)
            shown = "" if got is None else f" (got {json.dumps(got, ensure_ascii=False)})"
            line = f"  {problem.get('path')}: {problem.get('message')}{shown}"
            errors.print(line, highlight=False, soft_wrap=True)  # a value is not broken up
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        errors.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if State.debug:
            raise
        errors.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
