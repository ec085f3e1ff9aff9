"""What ``titan server`` says in its log: where it listens, and what it leaves running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_restart_safety import running_server_process

pytestmark = pytest.mark.slow


def test_server_logs_its_url_and_the_processes_it_leaves_running(tmp_path: Path) -> None:
    with running_server_process(tmp_path / "data") as server:
        hub = server.start()
        hub.apply({"type": "job", "name": "long", "spec": {"command": "sleep 300"}})
        hub.wait("job/long", {"running"}, generation=1, timeout=120)
        server.stop()  # SIGTERM
        said = (tmp_path / "server.log").read_text()
        hub = server.start()  # adopts the job; the fixture deletes it, whatever is asserted
        assert f"Titan listening on {server.url}; web console: {server.url}/" in said, said
        assert "1 process(es) left running for the next start to adopt" in said, said
        assert hub.get("job/long")["status"] == "running"
