"""Every anti-fraud rule flags the referral into the review queue instead of paying out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from questline.kit.clock import ManualClock
from questline.tenancy.schemas import Role
from tests.conftest import AppKeys, Factory, problem
from tests.referrals.helpers import balance, code_of, configure, idem, track


async def _flagged(client: httpx.AsyncClient, keys: AppKeys, code: str, referee: str, reason: str,
                   **extra: Any) -> dict[str, Any]:
    resp = await track(client, keys, code, referee, **extra)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    assert out["flagged"] and reason in out["fraud_reasons"], out
    assert out["review"] == "pending" and out["referrer_points"] == 0 and out["milestones"] == []
    return out


async def test_self_referral(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")
    await _flagged(client, keys, code, "sean", "self_referral")
    assert await balance(client, keys, "sean") == 0


async def test_same_ip_as_the_referrer(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean", ip="203.0.113.9", device_fingerprint="sean-phone")
    await _flagged(client, keys, code, "alt", "same_ip_as_referrer", ip="203.0.113.9")
    # The referrer's own signup IP counts as theirs too.
    ok = await track(client, keys, code, "ana", ip="198.51.100.1")
    assert not ok.json()["flagged"]
    ana_code = await code_of(client, keys, "ana")
    await _flagged(client, keys, ana_code, "ana-alt", "same_ip_as_referrer", ip="198.51.100.1")
    # A device the referrer was seen on is a reused device.
    await _flagged(client, keys, code, "alt2", "device_reused", device_fingerprint="sean-phone")


async def test_more_than_three_referrals_from_one_ip_in_seven_days(client: httpx.AsyncClient, factory: Factory,
                                                                     clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys)
    codes = [await code_of(client, keys, f"ref{i}") for i in range(5)]
    for i in range(3):
        assert not (await track(client, keys, codes[i], f"n{i}", ip="192.0.2.50")).json()["flagged"]
    await _flagged(client, keys, codes[3], "n3", "ip_velocity", ip="192.0.2.50")
    clock.advance(days=8)  # the window moved on
    assert not (await track(client, keys, codes[4], "n4", ip="192.0.2.50")).json()["flagged"]


async def test_reused_device_fingerprint(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")
    assert not (await track(client, keys, code, "a", device_fingerprint="fp-1")).json()["flagged"]
    await _flagged(client, keys, code, "b", "device_reused", device_fingerprint="fp-1")


@pytest.mark.parametrize("second", ["JaneDoe@gmail.com", "jane.doe+promo@gmail.com", "j.a.n.e.doe@googlemail.com"])
async def test_duplicate_normalized_email(client: httpx.AsyncClient, factory: Factory, second: str) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")
    assert not (await track(client, keys, code, "a", email="jane.doe@gmail.com")).json()["flagged"]
    await _flagged(client, keys, code, "b", "duplicate_email", email=second)
    # Dots matter outside gmail-like domains.
    assert not (await track(client, keys, code, "c", email="jane.doe@example.com")).json()["flagged"]
    assert not (await track(client, keys, code, "d", email="janedoe@example.com")).json()["flagged"]


async def test_review_queue_approve_pays_and_reject_never_does(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")
    assert not (await track(client, keys, code, "a", device_fingerprint="shared")).json()["flagged"]
    sus1 = await _flagged(client, keys, code, "b", "device_reused", device_fingerprint="shared")
    sus2 = await _flagged(client, keys, code, "c", "device_reused", device_fingerprint="shared")
    assert await balance(client, keys, "sean") == 1000  # a's signup and bronze only

    queue = (await client.get("/v1/referrals/review", headers=keys.server)).json()
    assert [r["id"] for r in queue["items"]] == [sus1["id"], sus2["id"]]
    # Progress is still tracked while held; it pays once approved.
    resp = await client.post(f"/v1/referrals/{sus1['id']}/status", headers=idem(keys.server),
                             json={"status": "converted"})
    assert resp.json()["status"] == "converted" and resp.json()["referrer_points"] == 0

    admin = await factory.admin(keys.org_id)
    resp = await client.post(f"/v1/referrals/{sus1['id']}/approve", headers=idem(admin.headers(keys.app_id)),
                             json={"note": "same household"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["review"] == "approved" and out["reviewed_by"] == f"admin:{admin.admin_id}"
    assert out["referrer_points"] == 2500 and out["referee_points"] == 500
    problem(await client.post(f"/v1/referrals/{sus1['id']}/approve", headers=idem(keys.server)), 409, "not_in_review")

    resp = await client.post(f"/v1/referrals/{sus2['id']}/reject", headers=idem(keys.server))
    assert resp.json()["review"] == "rejected"
    resp = await client.post(f"/v1/referrals/{sus2['id']}/status", headers=idem(keys.server),
                             json={"status": "converted"})
    assert resp.json()["referrer_points"] == 0
    assert await balance(client, keys, "sean") == 1000 + 500 + 2000 and await balance(client, keys, "c") == 0
    summary = (await client.get("/v1/players/sean/referrals", headers=keys.server)).json()
    assert summary["counted"] == 2  # the rejected one never counts
    assert (await client.get("/v1/referrals/review", headers=keys.server)).json()["items"] == []

    token = await factory.player_token(keys, "sean")
    problem(await client.get("/v1/referrals/review", headers=token), 403, "caller_not_allowed")
    problem(await client.post(f"/v1/referrals/{sus2['id']}/approve", headers=idem(token)), 403, "caller_not_allowed")
    viewer = await factory.admin(keys.org_id, role=Role.VIEWER)
    problem(await client.post(f"/v1/referrals/{sus2['id']}/approve", headers=idem(viewer.headers(keys.app_id))),
            403, "insufficient_role")
