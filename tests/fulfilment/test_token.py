"""Token rewards (issue 15 point 3): native coin and ERC-20 transfers on an in-process chain (eth-tester,
py-evm), confirmations tracked, and never paid twice across a crash between sending and recording."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from questline.fulfilment import service as fulfilment
from questline.fulfilment.chain import Web3Chain
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys, Factory
from tests.fulfilment.helpers import records, won

# web3, eth-tester, py-evm and vyper raise the recursion limit of the whole process on import (see
# fulfilment.chain.load_web3); put it back so the rest of the suite runs at the usual depth.
_LIMIT = sys.getrecursionlimit()
import vyper  # noqa: E402
from eth_account import Account  # noqa: E402
from web3 import AsyncWeb3  # noqa: E402
from web3.providers.eth_tester import AsyncEthereumTesterProvider  # noqa: E402

sys.setrecursionlimit(_LIMIT)

TOKEN_SOURCE = """
# pragma version ~=0.4.0
balanceOf: public(HashMap[address, uint256])

@deploy
def __init__(supply: uint256):
    self.balanceOf[msg.sender] = supply

@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True
"""
ETHER = 10**18


@dataclass
class LocalChain:
    w3: AsyncWeb3[Any]
    provider: AsyncEthereumTesterProvider
    token: Any  # the ERC-20 contract

    def mine(self, blocks: int = 1) -> None:
        self.provider.ethereum_tester.mine_blocks(blocks)

    async def coins(self, address: str) -> int:
        return int(await self.w3.eth.get_balance(address))  # type: ignore[arg-type]

    async def tokens(self, address: str) -> int:
        return int(await self.token.functions.balanceOf(address).call())


@pytest.fixture
async def chain(runtime: Runtime) -> AsyncIterator[LocalChain]:
    provider = AsyncEthereumTesterProvider()
    w3 = AsyncWeb3(provider)
    funder = (await w3.eth.accounts)[0]
    signer = Account.create()
    await w3.eth.send_transaction({"from": funder, "to": signer.address, "value": 100 * ETHER})
    built = vyper.compile_code(TOKEN_SOURCE, output_formats=["bytecode", "abi"])
    deployed = await w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"]).constructor(10**24).transact(
        {"from": funder})
    address = (await w3.eth.get_transaction_receipt(deployed))["contractAddress"]
    token = w3.eth.contract(address=address, abi=built["abi"])
    await token.functions.transfer(signer.address, 10**21).transact({"from": funder})
    runtime.extensions[fulfilment.CHAIN] = Web3Chain(w3, signer.key.hex())
    yield LocalChain(w3, provider, token)


async def wallet(client: httpx.AsyncClient, keys: AppKeys, player: str) -> str:
    address = str(Account.create().address)
    resp = await client.put(f"/v1/players/{player}/account", headers=keys.server,
                            json={"traits": {"wallet_address": address}})
    assert resp.status_code == 200, resp.text
    return address


class Crash(Exception):
    pass


def crash_at(phase: str) -> Any:
    def hook(name: str) -> None:
        if name == phase:
            raise Crash(name)
    return hook


async def test_native_and_erc20_rewards_wait_for_their_confirmations(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock, chain: LocalChain) -> None:
    keys = await factory.app()
    runtime.settings.token_confirmations = 3
    ann, ben = await wallet(client, keys, "ann"), await wallet(client, keys, "ben")
    await won(client, keys, runtime, clock, [
        {"from_rank": 1, "token": {"amount": str(ETHER // 2)}},
        {"from_rank": 2, "token": {"amount": "2500", "contract": chain.token.address}}], players=("ann", "ben"))
    assert await fulfilment.process_due(runtime) == 2
    assert await chain.coins(ann) == ETHER // 2 and await chain.tokens(ben) == 2500
    for record in await records(client, keys):
        assert record["status"] == "processing" and record["tx_hash"].startswith("0x")
        assert record["result"]["confirmations"] == 1
    chain.mine(1)  # ann's transfer was mined a block before ben's: it now has 3
    clock.advance(seconds=5)
    assert await fulfilment.process_due(runtime) == 2
    assert {r["player_id"]: (r["status"], r["result"]["confirmations"]) for r in await records(client, keys)} == {
        "ann": ("completed", 3), "ben": ("processing", 2)}
    chain.mine(1)
    clock.advance(seconds=5)
    await fulfilment.process_due(runtime)
    done = await records(client, keys)
    assert {(r["status"], r["result"]["confirmations"]) for r in done} == {("completed", 3)}
    assert await chain.coins(ann) == ETHER // 2 and await chain.tokens(ben) == 2500
    prizes = (await client.get("/v1/players/ben/prizes", headers=keys.server)).json()["items"]
    assert prizes[0]["fulfilment"] == "completed"


@pytest.mark.parametrize("phase", ["recorded", "sent"])
async def test_a_crash_around_the_send_never_pays_twice(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock, chain: LocalChain,
        phase: str) -> None:
    keys = await factory.app()
    ann = await wallet(client, keys, "ann")
    await won(client, keys, runtime, clock, [{"from_rank": 1, "token": {"amount": "777"}}], players=("ann",))
    with pytest.raises(Crash):
        await fulfilment.process_due(runtime, on_phase=crash_at(phase))
    [record] = await records(client, keys)
    assert record["status"] == "processing" and record["tx_hash"]  # recorded before it was sent
    assert await chain.coins(ann) == (777 if phase == "sent" else 0)
    assert await fulfilment.process_due(runtime) == 0  # the crashed worker's claim still holds
    clock.advance(seconds=fulfilment.LEASE.total_seconds() + 1)
    for _ in range(3):
        await fulfilment.process_due(runtime)
        clock.advance(seconds=5)
    [record] = await records(client, keys)
    assert record["status"] == "completed" and await chain.coins(ann) == 777
    assert record["tx_hash"] == (await chain.w3.eth.get_transaction_receipt(record["tx_hash"]))[
        "transactionHash"].to_0x_hex()


async def test_a_player_without_a_wallet_fails_with_the_reason(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock, chain: LocalChain) -> None:
    keys = await factory.app()
    await won(client, keys, runtime, clock, [{"from_rank": 1, "token": {"amount": "5"}}], players=("ann",))
    await fulfilment.process_due(runtime)
    [record] = await records(client, keys)
    assert record["status"] == "failed" and "wallet_address" in record["last_error"]
    assert record["tx_hash"] is None
    address = await wallet(client, keys, "ann")
    assert (await client.post(f"/v1/fulfilments/{record['id']}/retry", headers=keys.server)).status_code == 200
    await fulfilment.process_due(runtime)
    assert await chain.coins(address) == 5


def test_a_chain_leaves_the_recursion_limit_as_it_was() -> None:
    """web3 and py-evm raise the limit on import; at 100,000 a deeply nested JSON body overflowed the C
    stack of the server (a segmentation fault) instead of answering 400."""
    before = sys.getrecursionlimit()
    Web3Chain.from_url("http://127.0.0.1:9", "0x" + "11" * 32)
    assert sys.getrecursionlimit() == before
