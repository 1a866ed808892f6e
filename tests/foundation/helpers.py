"""Helpers for foundation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def from_address(engine: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``host`` (the ASGI scope's client address)."""
    transport = httpx.ASGITransport(app=engine, raise_app_exceptions=False, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://questline.test") as client:
        yield client
