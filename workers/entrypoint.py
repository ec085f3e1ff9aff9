"""Start a scheduler, worker, JupyterLab server or job command with the right flags.

Usage: ``python -m workers.entrypoint ROLE [OPTIONS]``. Every role first runs
``TITAN_START_SCRIPT`` (if set) with ``sh -e``, then runs its program as a child,
forwards SIGTERM/SIGINT to it, and writes ``{"exit_code", "finished_at"}`` to
``TITAN_EXIT_FILE`` (if set) when it ends, so the exit code survives a restart
of the control plane.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from workers.telemetry import Sampler, start_from_environment

READY_MARKER = "titan: ready"
TLS_CERT_FILE, TLS_KEY_FILE = "dask-cert.pem", "dask-key.pem"  # see service.core.cluster_tls


def dask_tls_environment(environ: dict[str, str]) -> dict[str, str]:
    """Dask settings (as variables) making every role of a TLS cluster use its certificate.

    For ``TITAN_DASK_TLS=1``, with the certificate in ``TITAN_SECRETS_DIR``: the
    scheduler (run with ``--protocol tls``) accepts only TLS connections that present
    the cluster's certificate, and workers and clients (a job's or a notebook's
    ``distributed.Client()``) present it. Backends put these in the process's
    environment.
    """
    if environ.get("TITAN_DASK_TLS") != "1":
        return {}
    folder = Path(environ["TITAN_SECRETS_DIR"])
    cert, key = str(folder / TLS_CERT_FILE), str(folder / TLS_KEY_FILE)
    values = {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": cert,
    }
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        values[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = cert
        values[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = key
    return values


def scheduler_command(args: argparse.Namespace) -> list[str]:
    """``dask scheduler`` on a free port, writing its address to the scheduler file."""
    Path(args.scheduler_file).parent.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "dask",
        "scheduler",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--dashboard-address",
        f"{args.host}:{args.dashboard_port}",
        "--scheduler-file",
        args.scheduler_file,
        *(["--dashboard-prefix", args.dashboard_prefix] if args.dashboard_prefix else []),
        *(["--protocol", "tls"] if os.environ.get("TITAN_DASK_TLS") == "1" else []),
        "--preload",  # counts tasks and runs the scheduler's own telemetry sampler
        "workers.plugins",
    ]


def worker_command(args: argparse.Namespace) -> list[str]:
    """``dask cuda worker`` where GPUs are allocated, ``dask worker`` elsewhere."""
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        raise SystemExit("worker: DASK_SCHEDULER_ADDRESS is not set")
    program = ["cuda", "worker"] if args.gpu else ["worker"]
    command = [sys.executable, "-m", "dask", *program, address, "--name", args.name]
    command += ["--host", args.host, "--dashboard-address", f"{args.host}:0"]
    if not args.gpu:  # dask-cuda runs one thread per GPU by design
        command += ["--nthreads", str(args.nthreads)]
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    return command


def jupyter_command(args: argparse.Namespace) -> list[str]:
    """JupyterLab on a free port; its token comes from ``JUPYTER_TOKEN``."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={args.host}",
        f"--ServerApp.port={args.port}",
        f"--ServerApp.root_dir={args.root_dir}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    return command


def job_command(args: argparse.Namespace) -> list[str]:
    """The job's own command: an argv list, or a string run by ``sh -c``."""
    if args.shell is not None:
        return ["/bin/sh", "-c", args.shell]
    if not args.argv:
        raise SystemExit("job: give --shell COMMAND or -- ARGV...")
    return list(args.argv)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of the entrypoint."""
    parser = argparse.ArgumentParser(prog="python -m workers.entrypoint")
    parser.add_argument("--host", default="127.0.0.1", help="address servers listen on")
    roles = parser.add_subparsers(dest="role", required=True)
    scheduler = roles.add_parser("scheduler")
    scheduler.add_argument("--scheduler-file", required=True)
    scheduler.add_argument("--port", type=int, default=0, help="0: any free port")
    scheduler.add_argument("--dashboard-port", type=int, default=0, help="0: any free port")
    scheduler.add_argument("--dashboard-prefix", default="", help="path the dashboard is under")
    worker = roles.add_parser("worker")
    worker.add_argument("--name", required=True)
    worker.add_argument("--nthreads", type=int, default=1)
    worker.add_argument("--memory-limit", default=None)
    worker.add_argument("--gpu", action="store_true", help="run dask cuda worker")
    jupyter = roles.add_parser("jupyter")
    jupyter.add_argument("--root-dir", default=".")
    jupyter.add_argument("--port", type=int, default=0, help="0: any free port")
    job = roles.add_parser("job")
    job.add_argument("--shell", default=None)
    job.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.role == "job" and args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    return args


COMMANDS = {
    "scheduler": scheduler_command,
    "worker": worker_command,
    "jupyter": jupyter_command,
    "job": job_command,
}


READY_AT_ONCE = ("worker", "job")  # roles with nothing to wait for before they count as up


def ready_info(args: argparse.Namespace) -> dict[str, object] | None:
    """What the role's program wrote once it serves; ``{}`` for roles ready at once,
    None while it is still starting."""
    if args.role == "scheduler":
        paths = [Path(args.scheduler_file)]
    elif args.role == "jupyter":
        runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR", "."))
        paths = sorted(runtime.glob("jpserver-*.json"))
    else:
        return {}
    for path in paths:
        try:
            info: dict[str, object] = json.loads(path.read_text())
            return info
        except (OSError, ValueError):
            pass  # absent or half-written: not ready yet
    return None


def announce_ready(
    args: argparse.Namespace, child: subprocess.Popen[bytes], sampler: Sampler | None = None
) -> None:
    """Print ``READY_MARKER`` and the ready information once the program serves.

    Backends that see only the output (containers) learn the endpoints from it.
    A Jupyter server's kernels are sampled from then on.
    """
    while child.poll() is None:
        info = ready_info(args)
        if info is not None:
            print(READY_MARKER, json.dumps(info), flush=True)
            if sampler is not None and args.role == "jupyter":
                from workers.plugins import JupyterReader

                base = f"http://127.0.0.1:{info['port']}{info.get('base_url', '/')}"
                sampler.readers.append(JupyterReader(base, str(info.get("token", ""))))
            return
        time.sleep(0.05)


def process_name(args: argparse.Namespace) -> str:
    """The name of this process within its resource: a worker's name, else the role."""
    return str(args.name) if args.role == "worker" else str(args.role)


def run(command: list[str], args: argparse.Namespace | None = None) -> int:
    """Run ``command`` as a child, forwarding termination signals; its exit code.

    Every role but the scheduler (which samples itself, see workers.plugins)
    runs a telemetry sampler here while the child runs, and pushes what is
    left when it ends.
    """
    sampler = None
    if args is not None and args.role != "scheduler":
        sampler = start_from_environment(process_name(args))
    if args is not None and args.role in READY_AT_ONCE:
        # Said before the program starts, so the marker never lands amid its output.
        print(READY_MARKER, json.dumps({}), flush=True)
    child = subprocess.Popen(command)
    if args is not None and args.role not in READY_AT_ONCE:
        watcher = threading.Thread(target=announce_ready, args=(args, child, sampler), daemon=True)
        watcher.start()

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    if sampler is not None:
        sampler.stop()
        sampler.join(timeout=5)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the start script, then the role's program; return its exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    command = COMMANDS[args.role](args)
    start_script = os.environ.get("TITAN_START_SCRIPT")
    code = 0
    if start_script:
        print(f"titan: running start script ({len(start_script)} bytes)", flush=True)
        code = subprocess.call(["/bin/sh", "-ec", start_script])
        if code != 0:
            print(f"titan: start script failed with exit code {code}", flush=True)
    if code == 0:
        print(f"titan: starting {args.role}: {' '.join(command[:6])} ...", flush=True)
        code = run(command, args)
    exit_file = os.environ.get("TITAN_EXIT_FILE")
    if exit_file:
        record = {"exit_code": code, "finished_at": time.time()}
        Path(exit_file).write_text(json.dumps(record))
    print(f"titan: {args.role} exited with code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
