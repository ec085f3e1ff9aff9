"""A console session driven over HTTP (no browser): sign in with a token, keep the cookie,
send the page's CSRF token with each change, as the console's own pages do."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]*)">')


class Console:
    """A signed-in browser session on the server at ``url``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        answer = self.http.post("/sign-in", data={"token": token}, headers={"Origin": url})
        assert answer.status_code == 303, answer.text
        self.csrf = self.csrf_of(self.http.get("/new").text)

    @staticmethod
    def csrf_of(page: str) -> str:
        """The CSRF token a page carries."""
        found = CSRF.search(page)
        assert found is not None and found[1], page[:300]
        return found[1]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """A page (or a fragment) as the signed-in user."""
        return self.http.get(path, headers={"Accept": "text/html"}, **kw)

    def post(
        self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **headers: str
    ) -> httpx.Response:
        """A form post from one of the console's pages (its CSRF token, this origin)."""
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        sent = {"Origin": self.url, "Accept": "text/html", **headers}
        return self.http.post(path, data=form, headers=sent)

    def close(self) -> None:
        self.http.close()
