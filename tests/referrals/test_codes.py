"""One readable, unique referral code per player."""

from __future__ import annotations

import re

import httpx

from questline.referrals.service import normalize_email
from tests.conftest import Factory, problem
from tests.referrals.helpers import configure, idem


async def test_one_code_per_player_made_on_first_request(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await client.put("/v1/players/sean/account", headers=keys.server, json={"display_name": "Seán Swan"})
    token = await factory.player_token(keys, "sean")

    resp = await client.post("/v1/players/sean/referral-code", headers=token, json={})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert re.fullmatch(r"SEAN-SWAN-[A-HJ-NP-Z2-9]{4}", out["code"]), out
    assert out["referral_url"] == f"https://example.com/join?ref={out['code']}"
    assert out["sharing_message"] == f"Join me and get 500 bonus points! Use code {out['code']}"
    again = await client.post("/v1/players/sean/referral-code", headers=keys.server, json={})
    assert again.status_code == 200 and again.json()["code"] == out["code"]

    problem(await client.post("/v1/players/sean/referral-code", headers=token, json={"ip": "203.0.113.9"}),
            403, "server_key_required")
    problem(await client.post("/v1/players/other/referral-code", headers=token, json={}), 404)
    problem(await client.post("/v1/players/sean/referral-code", headers=keys.server, json={"ip": "not-an-ip"}),
            422, "validation_failed")
    summary = (await client.get("/v1/players/sean/referrals", headers=token)).json()
    assert summary["code"] == out["code"] and summary["counted"] == 0
    assert summary["next_milestone"]["tier"] == "bronze"


async def test_codes_are_unique_and_readable(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys, {"currency": "points"})
    codes = set()
    for i in range(25):
        await client.put(f"/v1/players/p{i}/account", headers=keys.server, json={"display_name": "Alex"})
        resp = await client.post(f"/v1/players/p{i}/referral-code", headers=keys.server)
        assert resp.status_code == 201, resp.text
        codes.add(resp.json()["code"])
    assert len(codes) == 25 and all(c.startswith("ALEX-REF-") for c in codes)
    resp = await client.post("/v1/players/user_42/referral-code", headers=keys.server)
    assert resp.json()["code"].startswith("USER42-REF-") and resp.json()["referral_url"] is None


async def test_one_program_per_app_with_a_known_currency(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    body = problem(await client.put("/v1/definitions/referral_program/other", headers=keys.server,
                                    json={"currency": "points"}), 422, "invalid_definition")
    assert "'default'" in body["detail"]
    problem(await client.put("/v1/definitions/referral_program/default", headers=keys.server,
                             json={"currency": "gems"}), 422, "invalid_definition")
    milestones = [{"tier": "silver", "name": "S", "referrals": 5}, {"tier": "bronze", "name": "B", "referrals": 1}]
    problem(await client.put("/v1/definitions/referral_program/default", headers=keys.server,
                             json={"milestones": milestones}), 422, "invalid_definition")
    problem(await client.put("/v1/definitions/referral_program/default", headers=keys.server,
                             json={"link": "https://example.com/join"}), 422, "invalid_definition")
    problem(await client.post("/v1/referrals/track", headers=idem(keys.server),
                              json={"code": "NOPE-SWAN-AAAA", "referred_player_id": "x"}), 404,
            "referral_code_not_found")


def test_email_normalization() -> None:
    assert normalize_email(" Jane.Doe+promo@GMail.com ") == "janedoe@gmail.com"
    assert normalize_email("jane.doe@googlemail.com") == "janedoe@gmail.com"
    assert normalize_email("Jane.Doe+x@Example.org") == "jane.doe@example.org"
    assert normalize_email("a+b+c@fastmail.com") == "a@fastmail.com"
