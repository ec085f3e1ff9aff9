"""``titan logs`` and ``titan get`` against a real server: whole lines, times, following."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.conftest import RunningServer
from tests.integration.test_cli import titan

pytestmark = pytest.mark.slow
NAME = "a-job-whose-name-makes-the-first-line-of-titan-get-long"


def test_redirected_output_is_whole_and_literal(server: RunningServer) -> None:
    said = "[bold]not markup[/bold] :smile: " + "x" * 300
    recipe = {"type": "job", "name": NAME, "spec": {"command": f"echo '{said}'"}}
    assert titan(server, "apply", "-", "--wait", stdin=json.dumps(recipe)).returncode == 0
    shown = titan(server, "logs", f"job/{NAME}")
    assert shown.returncode == 0, shown.stderr
    assert f"job {said}\n" in shown.stdout  # one line, every character as printed
    got = titan(server, "get", f"job/{NAME}").stdout
    assert f"job/{NAME} (owner admin, generation 1)\n" in got, got


def test_logs_since_a_time_and_with_each_lines_time(server: RunningServer) -> None:
    program = "echo early; sleep 2; echo late; sleep 300"
    hub = server.hub()
    hub.apply({"type": "job", "name": "timed", "spec": {"command": program}})
    hub.wait("job/timed", {"running"}, generation=1, timeout=120)
    deadline = time.monotonic() + 60
    while "late" not in hub.logs("job/timed", "job")["processes"]["job"]["text"].splitlines():
        assert time.monotonic() < deadline, "the job never said late"
        time.sleep(0.2)
    stamped = titan(server, "logs", "job/timed", "--timestamps").stdout.splitlines()
    times = {
        line.split(" ", 2)[2]: datetime.fromisoformat(line.split(" ", 2)[1]) for line in stamped
    }
    assert (times["late"] - times["early"]).total_seconds() >= 1.9, stamped
    between = (times["early"].timestamp() + times["late"].timestamp()) / 2
    since = datetime.fromtimestamp(between, UTC).isoformat().replace("+00:00", "Z")
    later = titan(server, "logs", "job/timed", "--since", since).stdout.splitlines()
    assert later == ["job late"], later
    assert titan(server, "logs", "job/timed", "--since", "1h").stdout.count("job early") == 1
    refused = titan(server, "logs", "job/timed", "--since", "yesterday")
    assert refused.returncode != 0 and "is not a time" in refused.stderr
    api = server.request("GET", "/api/v1/resources/job/timed/logs", params={"since": "soon"})
    assert api.status_code == 422 and "since: 'soon' is not a time" in api.text


def test_follow_goes_on_with_the_new_run_of_a_restarted_process(
    server: RunningServer, tmp_path: Path
) -> None:
    hub = server.hub()
    first = "echo first-run-" + "y" * 3000 + "; sleep 300"
    hub.apply({"type": "job", "name": "again", "spec": {"command": first}})
    hub.wait("job/again", {"running"}, generation=1, timeout=120)
    out = tmp_path / "followed.txt"
    base = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    with open(out, "w") as stream:
        follower = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "logs", "job/again", "-f"],
            env={**base, "TITAN_URL": server.url, "TITAN_TOKEN": server.token},
            stdout=stream,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _until_in(out, "first-run-", follower)
        second = "echo second-run; sleep 300"
        hub.apply({"type": "job", "name": "again", "spec": {"command": second}})
        _until_in(out, "job second-run", follower)
        time.sleep(2)  # a few more polls: nothing is printed twice
        text = out.read_text()
        assert text.count("job first-run-") == 1 and text.count("job second-run") == 1, text[-500:]
        assert "started again" in text
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=30)


def _until_in(path: Path, text: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while text not in path.read_text():
        assert process.poll() is None, f"the follower ended: {path.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in {path.read_text()[-2000:]}"
        time.sleep(0.2)
