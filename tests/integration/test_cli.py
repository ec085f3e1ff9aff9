"""The ``titan`` command against a real server, and ``titan demo`` end to end."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.slow


def titan(
    server: RunningServer | None,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    if server is not None:
        base.update(TITAN_URL=server.url, TITAN_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**base, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_apply_wait_get_plan_logs_stop_delete(server: RunningServer, tmp_path: Path) -> None:
    recipe = tmp_path / "job.json"
    recipe.write_text(
        json.dumps({"type": "job", "name": "hi", "spec": {"command": "echo hi there"}})
    )
    applied = titan(server, "apply", str(recipe), "--wait")
    assert applied.returncode == 0, applied.stderr
    assert "job/hi created" in applied.stdout
    assert "succeeded" in applied.stdout and "job exited with code 0" in applied.stdout
    again = titan(server, "apply", str(recipe))
    assert "unchanged" in again.stdout
    nodes = titan(server, "nodes")
    assert nodes.returncode == 0 and "none" in nodes.stdout  # no GPUs on this machine
    cpus = os.cpu_count() or 1
    assert f"{cpus} x 4 = {cpus * 4} promised" in nodes.stdout, nodes.stdout
    assert "TITAN_CPU_OVERCOMMIT" in nodes.stdout
    listing = titan(server, "ls")
    assert "job/hi" in listing.stdout and "succeeded" in listing.stdout
    shown = titan(server, "get", "job/hi", "--json")
    assert json.loads(shown.stdout)["processes"][0]["exit_code"] == 0
    logs = titan(server, "logs", "job/hi")
    assert "hi there" in logs.stdout
    recipe.write_text(json.dumps({"type": "job", "name": "hi", "spec": {"command": "echo bye"}}))
    plan = titan(server, "plan", str(recipe))
    assert "update" in plan.stdout and "spec.command" in plan.stdout
    assert "echo hi there" in plan.stdout
    cluster = json.dumps({"type": "cluster", "name": "c", "spec": {"n_workers": 2}})
    assert titan(server, "apply", "-", "--wait", stdin=cluster).returncode == 0
    listed = titan(server, "ls").stdout
    assert "workers" in listed and "2/2" in listed, listed
    assert "workers: 2/2 ready" in titan(server, "get", "cluster/c").stdout
    stopped = titan(server, "stop", "cluster/c", "--wait")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout
    assert server.hub().get("cluster/c")["status"] == "stopped"  # --wait waited for it
    started = titan(server, "start", "cluster/c", "--wait")
    assert started.returncode == 0 and "running" in started.stdout, started.stdout
    assert server.hub().get("cluster/c")["workers"] == {"ready": 2, "wanted": 2}
    deleted = titan(server, "delete", "cluster/c", "--wait")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout, deleted.stdout
    assert "cluster/c" not in titan(server, "ls").stdout


def test_logs_follow_prints_new_output(server: RunningServer) -> None:
    command = "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done"
    server.hub().apply({"type": "job", "name": "ticker", "spec": {"command": command}})
    server.hub().wait("job/ticker", {"running"}, timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    env.update(TITAN_URL=server.url, TITAN_TOKEN=server.token)
    follower = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "logs", "job/ticker", "-f"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        seen: list[list[str]] = []
        while ["job", "tick", "6"] not in seen and len(seen) < 20:
            seen.append(follower.stdout.readline().split())
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    ticks = [words[2] for words in seen if words[:2] == ["job", "tick"]]
    assert ticks == ["1", "2", "3", "4", "5", "6"]


def test_users_and_tokens(server: RunningServer) -> None:
    created = titan(server, "user", "create", "dana")
    assert created.returncode == 0 and "user dana created" in created.stdout
    token = created.stdout.strip().splitlines()[-1]
    other = titan(server, "token", "create", "--name", "ci", env={"TITAN_TOKEN": token})
    assert other.returncode == 0 and "token for dana" in other.stdout
    denied = titan(server, "user", "create", "eve", env={"TITAN_TOKEN": token})
    assert denied.returncode == 1 and "only an admin" in denied.stderr


def test_errors_are_one_line_without_traceback(server: RunningServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "cluster", "name": "x", "spec": {"n_workers": -1}}))
    answer = titan(server, "apply", str(bad))
    assert answer.returncode == 1
    assert "error:" in answer.stderr and "spec.n_workers" in answer.stderr
    assert "Traceback" not in answer.stderr
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"type": "cluster", "name": "x", "spec": {"nworkers": "9" * 300}}))
    answer = titan(server, "apply", str(typo))
    assert answer.returncode == 1 and "did you mean `n_workers`?" in answer.stderr
    assert f'(got "{"9" * 80}…")' in answer.stderr
    missing = titan(server, "get", "cluster/nope")
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong = titan(server, "get", "no-slash")
    assert wrong.returncode != 0 and "TYPE/NAME" in wrong.stderr
    nobody = titan(None, "ls", env={"TITAN_URL": "http://127.0.0.1:9", "TITAN_TOKEN": "x"})
    assert nobody.returncode == 1 and "no Titan server answers" in nobody.stderr
    assert "Traceback" not in nobody.stderr
    debug = titan(None, "--debug", "ls", env={"TITAN_URL": "http://127.0.0.1:9"})
    assert "Traceback" in debug.stderr


def test_a_recipe_file_that_is_not_json_is_named_where(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "type": "job",\n  "name": "x",,\n}')
    answer = titan(None, "plan", str(broken), env={"TITAN_URL": "http://127.0.0.1:9"})
    assert answer.returncode == 1 and "line 3 column 15" in " ".join(answer.stderr.split())
    yaml = tmp_path / "job.yaml"
    yaml.write_text("type: job\nname: x\nspec:\n  command: echo hi\n")
    answer = titan(None, "apply", str(yaml), env={"TITAN_URL": "http://127.0.0.1:9"})
    assert answer.returncode == 1
    assert "recipes are JSON (this looks like YAML)" in " ".join(answer.stderr.split())
    assert "Traceback" not in answer.stderr


def test_demo_runs_end_to_end_on_an_embedded_server(tmp_path: Path) -> None:
    env = {"TITAN_URL": "http://127.0.0.1:9", "TMPDIR": str(tmp_path)}
    demo = titan(None, "demo", "--rows", "20000", env=env, timeout=400)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert "started an embedded server" in out
    assert "(exact: True)" in out
    assert "xgboost on cpu: RMSE" in out
    assert "demo finished" in out
    assert list(tmp_path.glob("titan-demo-*")) == []  # its data directory was cleaned up


def test_groups_quotas_secrets_images_usage_and_audit(server: RunningServer) -> None:
    wide = {"COLUMNS": "200"}

    def ok(*args: str, stdin: str | None = None) -> str:
        done = titan(server, *args, env=wide, stdin=stdin)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    ok("user", "create", "ann")
    assert "group ml created" in ok("group", "create", "ml", "--admin", "ann")
    assert "ann is a member of ml" in ok("group", "add", "ml", "ann")
    assert "ann (member)" in ok("group", "ls")
    shown = ok("quota", "set", "ml", "--gpus", "2", "--memory", "64GiB")
    assert "gpus" in shown and "2.0" in shown and "68719476736" in shown
    assert "secret ml/db stored" in ok("secret", "create", "db", "--owner", "ml", stdin="s3cr3t\n")
    listed = ok("secret", "ls")
    assert "db" in listed and "s3cr3t" not in listed
    assert "version 2" in ok("secret", "rotate", "db", "--owner", "ml", stdin="n3w\n")
    assert "2 secrets encrypted" not in ok("secret", "reencrypt")  # one secret here
    assert len(ok("secret", "new-key").strip()) == 44
    registered = ok("image", "register", "nvcr.io/nvidia/pytorch:24.01-py3", "--owner", "ml")
    assert "nvcr.io/nvidia/pytorch:24.01-py3 registered" in registered
    assert "nvcr.io/nvidia/pytorch:24.01-py3" in ok("image", "ls")
    assert "day" in ok("usage", "--owner", "ml")
    trail = ok("audit", "--limit", "20")
    assert "/api/v1/groups/ml/members/ann" in trail and "/api/v1/secrets" in trail
    refused = titan(server, "quota", "show", "nobody-here", env=wide)
    assert refused.returncode == 1 and "not found" in refused.stderr


def test_login_whoami_tokens_and_user_management(server: RunningServer, tmp_path: Path) -> None:
    config = tmp_path / "config"
    mine = {"TITAN_CONFIG_DIR": str(config), "COLUMNS": "200"}  # no TITAN_URL or TITAN_TOKEN
    dana = titan(server, "user", "create", "dana").stdout.strip().splitlines()[-1]
    login = titan(None, "login", server.url, env=mine, stdin=dana + "\n")
    assert login.returncode == 0, login.stderr
    assert f"logged in to {server.url} as dana" in login.stdout
    saved = config / "login.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": server.url, "token": dana}
    who = titan(None, "whoami", env=mine)
    assert who.returncode == 0 and f"dana (user) at {server.url}" in who.stdout
    wrong = titan(None, "login", server.url, "--token", "titan_wrong", env=mine)
    assert wrong.returncode == 1 and "not valid" in wrong.stderr
    assert json.loads(saved.read_text())["token"] == dana  # a failed login saves nothing

    made = titan(None, "token", "create", "--name", "ci", "--expires-in", "3600", env=mine)
    assert made.returncode == 0 and "token for dana (id " in made.stdout
    secret = made.stdout.strip().splitlines()[-1]
    listed = titan(None, "token", "ls", env=mine).stdout
    assert "ci" in listed and "first token" in listed and "never" in listed
    assert secret not in listed and dana not in listed
    (token_id,) = [t["id"] for t in server.hub(secret).tokens() if t["name"] == "ci"]
    revoked = titan(None, "token", "revoke", str(token_id), env=mine)
    assert revoked.returncode == 0 and f"token {token_id} revoked" in revoked.stdout
    assert titan(server, "whoami", env={"TITAN_TOKEN": secret}).returncode == 1

    assert "dana" in titan(server, "user", "ls", env={"COLUMNS": "200"}).stdout
    disabled = titan(server, "user", "disable", "dana")
    assert disabled.returncode == 0 and "user dana disabled" in disabled.stdout
    refused = titan(None, "whoami", env=mine)
    assert refused.returncode == 1 and "disabled" in refused.stderr
    assert titan(server, "user", "enable", "dana").returncode == 0
    assert titan(None, "whoami", env=mine).returncode == 0
    deleted = titan(server, "user", "delete", "dana")
    assert deleted.returncode == 0 and "user dana deleted" in deleted.stdout
    assert "forgot the login" in titan(None, "logout", env=mine).stdout
    assert not saved.exists()
