"""Demo content, so a newcomer has something to look at on first start."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.security import new_secret
from questline.tenancy import service as tenancy


@dataclass(frozen=True)
class DemoKeys:
    org_id: str
    app_id: str
    server_key: str
    client_key: str
    admin_email: str
    admin_password: str


async def bootstrap_demo(session: AsyncSession, clock: Clock) -> DemoKeys | None:
    """Create a demo organization, app and admin, but only on an empty database."""
    if await tenancy.count_orgs(session) > 0:
        return None
    password = new_secret()
    admin = await tenancy.create_admin(session, clock, "demo@questline.local", password, "Demo Admin")
    org = await tenancy.create_org(session, clock, "Demo Studio", owner_id=admin.id)
    app, server_key, client_key = await tenancy.create_app(session, clock, org.id, "Demo Game")
    return DemoKeys(org.id, app.id, server_key, client_key, admin.email, password)
