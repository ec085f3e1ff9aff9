"""Run one process of a Titan resource: its start script, then its program.

Usage: ``python -m workers.entrypoint [--host H] [--name N] [--telemetry MODE]
[--ready-port P] -- PROGRAM...``. The program (made by the process's engine,
see service/engines) may name ``${TITAN_PYTHON}`` (this interpreter),
``${TITAN_BIND_HOST}`` (the address to listen on), ``${TITAN_NODE_IP}`` (the
address other processes reach this one at) and ``${TITAN_SCRATCH}`` (a short
private folder, removed at exit); they are filled in here and set as
variables too.

The entrypoint runs ``TITAN_START_SCRIPT`` (if set) with ``sh -e``, runs the
program as a child, forwards SIGTERM/SIGINT to it, and prints
``READY_MARKER`` once it serves: at once, once ``--ready-port`` accepts
connections and (or) once the program prints ``--ready-text``. Backends wait
for that line, whatever they run on. It samples
the process (``--telemetry``: ``process``; ``none`` where the program samples
itself; ``jupyter`` adds the server's kernels; ``ray:PORT`` adds the Ray
cluster's activity from its dashboard on PORT) and writes ``{"exit_code",
"finished_at"}`` to ``TITAN_EXIT_FILE`` (if set) when it ends, so the exit
code survives a restart of the control plane.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from workers.line_times import record_line_times
from workers.telemetry import Reader, Sampler, start_from_environment

READY_MARKER = "titan: ready"
_PLACEHOLDER = re.compile(r"\$\{(TITAN_[A-Z_]+)\}")


def node_ip(host: str) -> str:
    """The address others reach this process at: ``host``, or where it listens on every
    interface (in a container), the address its own name resolves to."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    return socket.gethostbyname(socket.gethostname())


def make_scratch(chosen: str | None) -> str:
    """A new private (0700) folder with a short path (Unix socket paths must stay under
    108 bytes): the one the backend chose (it removes it when the process stops, even
    if killed), or a new one under /tmp (in a container, gone with it)."""
    if chosen:
        os.mkdir(chosen, 0o700)  # never one that exists: someone else's
        return chosen
    return tempfile.mkdtemp(prefix="titan-", dir="/tmp")


def fill_in(argv: Sequence[str], host: str) -> tuple[list[str], dict[str, str], str | None]:
    """``argv`` with its placeholders filled in, their values as variables, and the
    scratch folder made for it (None if it asks for none)."""
    values = {
        "TITAN_PYTHON": sys.executable,
        "TITAN_BIND_HOST": host,
        "TITAN_NODE_IP": node_ip(host),
    }
    scratch = None
    if any("${TITAN_SCRATCH}" in arg for arg in argv):
        scratch = make_scratch(os.environ.get("TITAN_SCRATCH_DIR"))
        values["TITAN_SCRATCH"] = scratch
    environ = {**os.environ, **values}

    def one(match: re.Match[str]) -> str:
        return environ.get(match.group(1), match.group(0))

    return [_PLACEHOLDER.sub(one, arg) for arg in argv], values, scratch


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of the entrypoint."""
    parser = argparse.ArgumentParser(prog="python -m workers.entrypoint")
    parser.add_argument("--host", default="127.0.0.1", help="address servers listen on")
    parser.add_argument("--name", default="process", help="the process's name in its resource")
    parser.add_argument("--telemetry", default="process", help="process, none, jupyter, ray:PORT")
    parser.add_argument("--ready-port", type=int, default=None, help="up once this port serves")
    parser.add_argument("--ready-text", default=None, help="up once the program prints this")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.program and args.program[0] == "--":
        args.program = args.program[1:]
    if not args.program:
        parser.error("give the program to run after --")
    return args


def serving(address: str, port: int) -> bool:
    """Whether ``port`` at ``address`` accepts connections."""
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


def extra_readers(mode: str, ready_port: int | None) -> list[Reader]:
    """What the sampler reads besides the process: a Jupyter server's kernels, or a Ray
    cluster's activity."""
    kind, _, port = mode.partition(":")
    address = os.environ.get("TITAN_NODE_IP", "127.0.0.1")  # where its servers listen
    if kind == "jupyter" and ready_port is not None:
        from workers.plugins import JupyterReader

        token = os.environ.get("JUPYTER_TOKEN", "")
        path = os.environ.get("TITAN_JUPYTER_PATH", "/")
        return [JupyterReader(f"http://{address}:{ready_port}{path}", token)]
    if kind == "ray" and port:
        from workers.ray_activity import RayReader

        return [RayReader(f"http://{address}:{port}")]
    return []


def relay_output(child: subprocess.Popen[bytes], text: str, said: threading.Event) -> None:
    """Copy the program's output to ours line by line; set ``said`` once it prints
    ``text``."""
    assert child.stdout is not None
    wanted = text.encode()
    for line in child.stdout:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
        if wanted in line:
            said.set()


def announce_ready(
    args: argparse.Namespace,
    child: subprocess.Popen[bytes],
    said: threading.Event | None,
    sampler: Sampler | None,
) -> None:
    """Print ``READY_MARKER`` once the program serves (said its ready text, and its
    ready port accepts connections); then sample what it serves."""
    address = os.environ.get("TITAN_NODE_IP", "127.0.0.1")
    while said is not None and not said.wait(0.05):
        if child.poll() is not None:
            return
    while args.ready_port is not None and not serving(address, args.ready_port):
        if child.poll() is not None:
            return
        time.sleep(0.05)
    print(READY_MARKER, flush=True)
    if sampler is not None:
        with contextlib.suppress(Exception):  # telemetry never stops the process
            sampler.readers.extend(extra_readers(args.telemetry, args.ready_port))


def run(command: list[str], args: argparse.Namespace) -> int:
    """Run ``command`` as a child, forwarding termination signals; its exit code."""
    sampler = None
    if args.telemetry != "none":
        sampler = start_from_environment(args.name)
    waits = args.ready_port is not None or args.ready_text is not None
    if not waits:
        # Said before the program starts, so the marker never lands amid its output.
        print(READY_MARKER, flush=True)
    said = relay = None
    if args.ready_text is not None:
        said = threading.Event()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        relay = threading.Thread(
            target=relay_output, args=(child, args.ready_text, said), daemon=True
        )
        relay.start()
    else:
        child = subprocess.Popen(command)
    if waits:
        watcher = threading.Thread(
            target=announce_ready, args=(args, child, said, sampler), daemon=True
        )
        watcher.start()
    elif sampler is not None:
        with contextlib.suppress(Exception):
            sampler.readers.extend(extra_readers(args.telemetry, None))

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    if relay is not None:
        relay.join(timeout=5)  # the rest of its output
    if sampler is not None:
        sampler.stop()
        sampler.join(timeout=5)
    return code


def run_or_explain(command: list[str], args: argparse.Namespace) -> int:
    """``run``, or the shell's one line and exit code where the command cannot be run
    (127: not found, 126: not executable), never a traceback."""
    try:
        return run(command, args)
    except FileNotFoundError:
        print(f"titan: command not found: {command[0]}", file=sys.stderr, flush=True)
        return 127
    except PermissionError:
        print(f"titan: permission denied: {command[0]}", file=sys.stderr, flush=True)
        return 126


def main(argv: Sequence[str] | None = None) -> int:
    """Run the start script, then the program; return its exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    times = os.environ.get("TITAN_LOG_TIMES")
    stop_times = record_line_times(times) if times else lambda: None
    try:
        return _main(args)
    finally:
        stop_times()


def _main(args: argparse.Namespace) -> int:
    command, values, scratch = fill_in(args.program, args.host)
    os.environ.update(values)
    start_script = os.environ.get("TITAN_START_SCRIPT")
    code = 0
    try:
        if start_script:
            print(f"titan: running start script ({len(start_script)} bytes)", flush=True)
            code = subprocess.call(["/bin/sh", "-ec", start_script])
            if code != 0:
                print(f"titan: start script failed with exit code {code}", flush=True)
        if code == 0:
            print(f"titan: starting {args.name}: {' '.join(command[:6])} ...", flush=True)
            code = run_or_explain(command, args)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    exit_file = os.environ.get("TITAN_EXIT_FILE")
    if exit_file:
        record = {"exit_code": code, "finished_at": time.time()}
        Path(exit_file).write_text(json.dumps(record))
    print(f"titan: {args.name} exited with code {code}", flush=True)
    # An exit status is 0-255: a program killed by signal S ends this process as a shell
    # reports it, 128 + S (a container's 137 for SIGKILL), not -S wrapped to 256 - S.
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
