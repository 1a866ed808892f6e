"""Signing in to the console in process (the ``client`` fixture), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re

import httpx

from tests.conftest import AdminLogin


class Console:
    """An httpx client signed in to the console as ``admin``, holding the form's CSRF token."""

    def __init__(self, client: httpx.AsyncClient, app_id: str) -> None:
        self.client, self.app_id, self.csrf = client, app_id, ""

    @property
    def base(self) -> str:
        return f"/console/apps/{self.app_id}"

    async def sign_in(self, admin: AdminLogin) -> Console:
        await self.client.get("/console/login")
        self.csrf = self.client.cookies["ql_console_csrf"]
        signed = await self.client.post("/console/login", data={"email": admin.email, "password": admin.password,
                                                               "csrf": self.csrf})
        assert signed.status_code == 303, signed.text
        return self

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.client.get(self.base + path, params=params)

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return await self.client.post(self.base + path, data={"csrf": self.csrf, **data})


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with this id (tags dropped), for assertions on one part of a page."""
    found = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(?:p|div|table|section|ul|textarea)>', html, re.S)
    assert found, f"no #{element_id} in the page"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def pager_link(html: str, rel: str) -> str | None:
    """The query of a page's Next (``rel="next"``) or Previous (``rel="prev"``) link, unescaped."""
    found = re.search(rf'<a href="(\?[^"]*)" rel="{rel}">', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def walk_pages(client: httpx.AsyncClient, url: str, row: str, query: str = "?") -> list[list[str]]:
    """Every page of a console list, following its Next links from ``url`` + ``query``: the row ids
    (``row``: a regular expression with one group) of each page. Each page's Previous link leads back
    to the page before it, showing the same rows."""
    pages: list[list[str]] = []
    queries: list[str] = []
    while True:
        answer = await client.get(url + query)
        assert answer.status_code == 200, answer.text
        pages.append(re.findall(row, answer.text))
        queries.append(query)
        previous = pager_link(answer.text, "prev")
        if len(pages) == 1:
            assert previous is None
        else:
            back = await client.get(url + previous)
            assert re.findall(row, back.text) == pages[-2]
        following = pager_link(answer.text, "next")
        if following is None:
            return pages
        query = following
