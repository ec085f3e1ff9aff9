"""The console's pages against a real server, signed in as a browser would be: each page
answers with its content, each form changes what the API then shows, and a change without
the page's CSRF token is refused and changes nothing."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.backends.nodes import GPU, Inventory
from tests.conftest import make_settings
from tests.fakes import FakeBackend
from tests.integration.conftest import RunningServer
from tests.waiting import wait_for

PAGE = {"Accept": "text/html"}


class Browser:
    """A signed-in console session: its cookie jar and the pages' CSRF token."""

    def __init__(self, server: RunningServer, token: str) -> None:
        self.server = server
        self.client = httpx.Client(
            base_url=server.url, follow_redirects=False, timeout=30, headers=PAGE
        )
        self.origin = {"Origin": server.url}
        answer = self.client.post("/sign-in", data={"token": token}, headers=self.origin)
        assert answer.status_code == 303, answer.text
        self.csrf = ""
        self.get("/")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """GET a page; its CSRF token is kept for the next change."""
        answer = self.client.get(path, **kw)
        found = re.search(r'<meta name="csrf-token" content="([^"]*)">', answer.text)
        if found and found.group(1):
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True) -> Any:
        """Submit a form as the page would (with the CSRF field unless ``csrf`` is False)."""
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        return self.client.post(path, data=form, headers=self.origin)

    def close(self) -> None:
        self.client.close()


def text_of(answer: httpx.Response, element_id: str) -> str:
    """The text of the element with ``element_id`` (tags dropped, entities read)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', answer.text, re.S)
    assert found, f"no #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


@pytest.fixture
def sign_in(server: RunningServer) -> Iterator[Callable[[str], Browser]]:
    """Sign in with a token; every browser is closed after the test."""
    browsers: list[Browser] = []

    def open_one(token: str) -> Browser:
        browsers.append(Browser(server, token))
        return browsers[-1]

    yield open_one
    for browser in browsers:
        browser.close()


@pytest.fixture
def admin(server: RunningServer, sign_in: Callable[[str], Browser]) -> Browser:
    return sign_in(server.token)


def new_user(server: RunningServer, name: str, is_admin: bool = False) -> str:
    """A user made through the API; their first token."""
    made = server.request("POST", "/api/v1/users", json={"name": name, "is_admin": is_admin})
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def apply(server: RunningServer, recipe: dict[str, Any]) -> None:
    """Apply a recipe through the API."""
    applied = server.request("PUT", "/api/v1/recipes", json=recipe)
    assert applied.is_success, applied.text


def status_of(server: RunningServer, resource: str) -> str:
    """A resource's status as the API tells it."""
    status: str = server.request("GET", f"/api/v1/resources/{resource}").json()["status"]
    return status


def test_a_token_made_on_the_page_works_until_revoked_there(
    server: RunningServer, admin: Browser
) -> None:
    page = admin.get("/tokens")
    assert page.status_code == 200
    assert "console session" in page.text and "this session" in page.text

    made = admin.post("/tokens", {"name": "laptop", "expires_days": "3"})
    assert made.status_code == 200, made.text
    secret = text_of(made, "new-token")
    assert "only time it is shown" in made.text
    assert server.request("GET", "/api/v1/users/me", token=secret).json()["name"] == "admin"
    assert secret not in admin.get("/tokens").text  # shown once

    listed = server.request("GET", "/api/v1/tokens").json()
    laptop = next(t for t in listed if t["name"] == "laptop")
    assert laptop["expires_at"] is not None
    assert admin.post(f"/tokens/{laptop['id']}/revoke", csrf=False).status_code == 403
    assert server.request("GET", "/api/v1/users/me", token=secret).status_code == 200

    revoked = admin.post(f"/tokens/{laptop['id']}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/tokens"
    assert server.request("GET", "/api/v1/users/me", token=secret).status_code == 401
    assert f'data-token="{laptop["id"]}"' not in admin.get("/tokens").text

    session = next(t for t in listed if t["name"] == "console session")
    refused = admin.post(f"/tokens/{session['id']}/revoke")
    assert refused.status_code == 409 and "the one this call is made with" in refused.text
    assert admin.get("/tokens").status_code == 200  # still signed in


def test_a_token_form_without_the_csrf_field_makes_nothing(
    server: RunningServer, admin: Browser
) -> None:
    before = len(server.request("GET", "/api/v1/tokens").json())
    assert admin.post("/tokens", {"name": "sneaky"}, csrf=False).status_code == 403
    assert len(server.request("GET", "/api/v1/tokens").json()) == before


def test_usage_shows_the_last_30_days_and_downloads_as_csv(admin: Browser) -> None:
    today = datetime.now(UTC).date()
    page = admin.get("/usage")
    assert page.status_code == 200
    assert f'value="{today - timedelta(days=29)}"' in page.text and f'value="{today}"' in page.text
    assert "No usage in this range" in page.text

    download = admin.get("/usage.csv", params={"from": str(today - timedelta(days=2))})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["owner", "day", "gpu_hours", "cpu_hours"]

    wrong = admin.get("/usage", params={"from": "yesterday"})
    assert wrong.status_code == 422 and "is not a date" in wrong.text


def test_quotas_are_shown_and_admins_set_and_reset_them(
    server: RunningServer, admin: Browser
) -> None:
    new_user(server, "quinn")
    page = admin.get("/quotas")
    assert page.status_code == 200 and 'data-owner="admin"' in page.text
    assert "No owner has a quota of its own" in page.text

    limits = {"owner": "quinn", "gpus": "2", "cpus": "", "memory": "8GiB", "resources": "3"}
    assert admin.post("/quotas", limits, csrf=False).status_code == 403
    assert server.request("GET", "/api/v1/quotas").json() == []
    assert admin.post("/quotas", limits).status_code == 303
    set_ = server.request("GET", "/api/v1/quotas/quinn").json()["limits"]
    assert set_ == {"gpus": 2, "cpus": None, "memory_bytes": 8 * 1024**3, "resources": 3}
    page = admin.get("/quotas")
    assert 'data-owner="quinn"' in page.text and "8.0 GiB" in page.text

    wrong = admin.post("/quotas", {**limits, "gpus": "-1", "memory": "lots"})
    assert wrong.status_code == 422
    assert "gpus:" in wrong.text and "memory:" in wrong.text

    assert admin.post("/quotas/quinn/reset").status_code == 303
    assert server.request("GET", "/api/v1/quotas").json() == []


def test_a_user_sees_their_own_quota_only(
    server: RunningServer, sign_in: Callable[[str], Browser]
) -> None:
    quinn = sign_in(new_user(server, "quinn"))
    page = quinn.get("/quotas")
    assert page.status_code == 200 and 'data-owner="quinn"' in page.text
    assert "Set a quota" not in page.text
    refused = quinn.post("/quotas", {"owner": "quinn", "gpus": "100"})
    assert refused.status_code == 403
    assert server.request("GET", "/api/v1/quotas").json() == []


class OneGpuNode(FakeBackend):
    """The fake backend on a node with one GPU (the only fake: no GPU here)."""

    async def nodes(self) -> list[Inventory]:
        gpu = GPU(index=0, uuid="GPU-0a1b2c", model="Fake H100", memory_bytes=80 * 1024**3)
        return [Inventory("gpu-1", 8, 64 * 1024**3, [gpu], "127.0.0.1")]


def test_nodes_show_who_holds_each_gpu_and_its_newest_reading(tmp_path: Path) -> None:
    backend = OneGpuNode()
    server = RunningServer(make_settings(tmp_path / "data"), backend)
    try:
        browser = Browser(server, server.token)
        job = {
            "type": "job",
            "name": "train",
            "spec": {"command": ["train"], "resources": {"gpu": 1}},
        }
        assert server.request(
            "PUT", "/api/v1/recipes", json={"schema_version": 1, **job}
        ).is_success
        wait_for(
            lambda: (
                server.request("GET", "/api/v1/resources/job/train").json()["status"] == "running"
            )
        )
        page = browser.get("/nodes")
        assert page.status_code == 200
        row = page.text.split('data-gpu="GPU-0a1b2c"')[1].split("</tr>")[0]
        assert '<a href="/resources/job/train?owner=admin">admin/job/train</a>' in row
        assert "no reading" in row

        env = next(iter(backend.machine.processes.values())).env
        sample = {
            "time": time.time(),
            "source": "gpu:GPU-0a1b2c",
            "values": {
                "gpu_utilization_percent": 87,
                "gpu_temperature_celsius": 64,
                "gpu_memory_used_bytes": 2 * 1024**3,
                "gpu_memory_total_bytes": 80 * 1024**3,
            },
        }
        batch = {"resource": env["TITAN_RESOURCE"], "samples": [sample]}
        sent = server.request("POST", "/api/v1/telemetry", token=env["TITAN_TOKEN"], json=batch)
        assert sent.status_code == 202, sent.text
        row = browser.get("/nodes").text.split('data-gpu="GPU-0a1b2c"')[1].split("</tr>")[0]
        assert "87 %" in row and "64 °C" in row and "2.0 GiB of 80.0 GiB" in row
        browser.close()
    finally:
        server.request("DELETE", "/api/v1/resources/job/train")
        server.stop()


HELLO = {
    "schema_version": 1,
    "type": "job",
    "name": "hello",
    "spec": {"command": ["python", "-c", "print(1)"]},
}


def test_jobs_show_exit_codes_and_run_again(server: RunningServer, admin: Browser) -> None:
    assert "No jobs yet" in admin.get("/jobs").text
    apply(server, HELLO)
    wait_for(lambda: status_of(server, "job/hello") == "succeeded")
    page = admin.get("/jobs")
    assert page.status_code == 200
    row = page.text.split('data-resource="job/hello"')[1].split("</tr>")[0]
    assert '<a href="/resources/job/hello">hello</a>' in row
    assert "<strong>0</strong>" in row and "Run again" in row, row
    first = server.request("GET", "/api/v1/resources/job/hello").json()["processes"][0]

    sneaky = admin.post("/resources/job/hello/start", {"back": "/jobs"}, csrf=False)
    assert sneaky.status_code == 403
    again = admin.post("/resources/job/hello/start", {"owner": "admin", "back": "/jobs"})
    assert again.status_code == 303 and again.headers["location"] == "/jobs"

    def ran_again() -> bool:
        view = server.request("GET", "/api/v1/resources/job/hello").json()
        processes = view["processes"]
        return view["status"] == "succeeded" and processes[0]["started_at"] != first["started_at"]

    wait_for(ran_again)

    # What it used shows in the usage report, and in its CSV.
    rows = list(csv.DictReader(io.StringIO(admin.get("/usage.csv").text)))
    assert any(row["owner"] == "admin" for row in rows), rows
    assert "No usage in this range" not in admin.get("/usage").text


def test_a_node_without_gpus_says_so(admin: Browser) -> None:
    page = admin.get("/nodes")
    assert page.status_code == 200 and "No GPUs on this node." in page.text


ADMIN_PAGES = ("/admin/users", "/admin/groups", "/admin/alerts", "/admin/audit")


def test_admin_pages_are_for_admins_only(
    server: RunningServer, sign_in: Callable[[str], Browser]
) -> None:
    quinn = sign_in(new_user(server, "quinn"))
    assert "/admin/users" not in quinn.get("/").text  # not in the navigation either
    for path in ADMIN_PAGES:
        refused = quinn.get(path)
        assert refused.status_code == 403, path
        assert "only an admin may do this" in refused.text
    assert quinn.post("/admin/users", {"name": "mallory", "is_admin": "true"}).status_code == 403
    assert quinn.post("/admin/groups", {"name": "crew"}).status_code == 403
    assert quinn.post("/admin/users/admin/disable").status_code == 403
    names = [u["name"] for u in server.request("GET", "/api/v1/users").json()]
    assert names == ["admin", "quinn"]
    assert server.request("GET", "/api/v1/groups").json() == []


def test_admins_create_disable_and_enable_users(server: RunningServer, admin: Browser) -> None:
    page = admin.get("/admin/users")
    assert page.status_code == 200 and 'data-user="admin"' in page.text

    assert admin.post("/admin/users", {"name": "nina"}, csrf=False).status_code == 403
    assert server.request("GET", "/api/v1/users").json()[-1]["name"] == "admin"
    made = admin.post("/admin/users", {"name": "nina"})
    assert made.status_code == 200, made.text
    token = text_of(made, "new-user-token")
    assert server.request("GET", "/api/v1/users/me", token=token).json()["name"] == "nina"
    assert token not in admin.get("/admin/users").text

    assert admin.post("/admin/users/nina/disable").status_code == 303
    assert server.request("GET", "/api/v1/users/me", token=token).status_code == 401
    assert "disabled" in admin.get("/admin/users").text.split('data-user="nina"')[1]
    assert admin.post("/admin/users/nina/enable").status_code == 303
    assert server.request("GET", "/api/v1/users/me", token=token).status_code == 200

    taken = admin.post("/admin/users", {"name": "nina"})
    assert taken.status_code == 422 and "already exists" in taken.text


def test_admins_make_groups_and_change_members(server: RunningServer, admin: Browser) -> None:
    new_user(server, "gus")
    assert "No groups yet" in admin.get("/admin/groups").text
    assert admin.post("/admin/groups", {"name": "team", "admins": "admin"}).status_code == 303
    added = admin.post("/admin/groups/team/members", {"user": "gus", "role": "member"})
    assert added.status_code == 303
    members = server.request("GET", "/api/v1/groups/team").json()["members"]
    assert {"user": "gus", "role": "member"} in members
    page = admin.get("/admin/groups")
    assert 'data-member="gus"' in page.text

    assert admin.post("/admin/groups/team/members/gus/remove", csrf=False).status_code == 403
    assert admin.post("/admin/groups/team/members/gus/remove").status_code == 303
    members = server.request("GET", "/api/v1/groups/team").json()["members"]
    assert [m["user"] for m in members] == ["admin"]


def test_alerts_and_audit_pages(server: RunningServer, admin: Browser) -> None:
    page = admin.get("/admin/alerts")
    assert page.status_code == 200
    assert "No alert events" in page.text and "Idle reclaims" in page.text

    new_user(server, "quinn")  # an audited change, by the admin
    audit = admin.get("/admin/audit", params={"actor": "admin"})
    assert audit.status_code == 200 and "POST /api/v1/users" in audit.text
    assert "No changes recorded" in admin.get("/admin/audit", params={"actor": "quinn"}).text
    future = admin.get("/admin/audit", params={"since": "2999-01-01T00:00"})
    assert "No changes recorded" in future.text
    assert admin.get("/admin/audit", params={"since": "soon"}).status_code == 422
