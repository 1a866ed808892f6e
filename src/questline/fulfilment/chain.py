"""Token transfers on an EVM chain with web3.py: native coin or ERC-20, signed locally.

The fulfilment service records the signed transaction (its raw bytes, hash and nonce) before it
is broadcast. After a crash it asks the chain for that hash: found, it only tracks confirmations;
not found, it broadcasts the very same signed bytes again, which can be mined at most once (one
nonce, one hash). A transfer is therefore never paid twice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

# transfer(address,uint256)
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
NATIVE_GAS = 21_000
TOKEN_GAS = 100_000
PRIORITY_FEE_WEI = 1_000_000_000


@dataclass(frozen=True)
class Signed:
    raw: str  # 0x-hex
    hash: str  # 0x-hex
    nonce: int


@dataclass(frozen=True)
class Receipt:
    ok: bool
    block: int


class Chain(Protocol):
    """What fulfilment needs of a chain; ``Web3Chain`` is the one implementation."""

    async def sign_transfer(self, to: str, amount: int, contract: str | None, min_nonce: int) -> Signed: ...
    async def broadcast(self, raw: str) -> None: ...
    async def receipt(self, tx_hash: str) -> Receipt | None: ...
    async def head(self) -> int: ...
    async def mined_nonce(self) -> int: ...


def checksum(address: str) -> str:
    """A valid EVM address in its checksum form; ValueError otherwise."""
    # imported on first use, like web3: eth_utils weighs ~25 MB in a process that never pays on-chain
    from eth_utils.address import is_checksum_address, to_checksum_address

    try:
        value = to_checksum_address(address)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{address!r} is not an EVM address") from exc
    if not is_checksum_address(value):
        raise ValueError(f"{address!r} is not an EVM address")
    return value


def load_web3() -> tuple[ModuleType, ModuleType, ModuleType]:
    """web3, eth_account and web3.exceptions, imported only when a chain is used.

    Importing them raises the interpreter's recursion limit to 100,000 for the whole process (py-evm
    and py_ecc do so for the EVM); at that depth a deeply nested JSON body overflows the C stack and
    kills the server instead of failing with a RecursionError. The limit is put back at once.
    """
    limit = sys.getrecursionlimit()
    try:
        import eth_account
        import web3
        import web3.exceptions
    finally:
        sys.setrecursionlimit(limit)
    return web3, eth_account, web3.exceptions


def _transfer_data(to: str, amount: int) -> bytes:
    return TRANSFER_SELECTOR + bytes.fromhex(to[2:].lower()).rjust(32, b"\0") + amount.to_bytes(32, "big")


class Web3Chain:
    """Signs with a local private key and talks to one JSON-RPC endpoint (or an in-process provider)."""

    def __init__(self, w3: Any, signer_key: str) -> None:
        web3, eth_account, exceptions = load_web3()
        self._web3 = web3.AsyncWeb3
        self._not_found = exceptions.TransactionNotFound
        self._w3 = w3
        self._account = eth_account.Account.from_key(signer_key)
        self._chain_id: int | None = None

    @classmethod
    def from_url(cls, rpc_url: str, signer_key: str) -> Web3Chain:
        web3, _, _ = load_web3()
        return cls(web3.AsyncWeb3(web3.AsyncWeb3.AsyncHTTPProvider(rpc_url)), signer_key)

    @property
    def address(self) -> str:
        return str(self._account.address)

    async def sign_transfer(self, to: str, amount: int, contract: str | None, min_nonce: int) -> Signed:
        eth = self._w3.eth
        if self._chain_id is None:
            self._chain_id = await eth.chain_id
        nonce = max(await eth.get_transaction_count(self._account.address, "pending"), min_nonce)
        base_fee = await eth.gas_price
        tx: dict[str, Any] = {"nonce": nonce, "chainId": self._chain_id, "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
                              "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI}
        if contract is None:
            tx.update(to=checksum(to), value=amount, gas=NATIVE_GAS)
        else:
            tx.update(to=checksum(contract), value=0, gas=TOKEN_GAS, data=_transfer_data(checksum(to), amount))
        signed = self._account.sign_transaction(tx)
        to_hex = self._web3.to_hex
        return Signed(raw=to_hex(signed.raw_transaction), hash=to_hex(signed.hash), nonce=nonce)

    async def broadcast(self, raw: str) -> None:
        await self._w3.eth.send_raw_transaction(raw)

    async def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            found = await self._w3.eth.get_transaction_receipt(tx_hash)
        except self._not_found:
            return None
        return Receipt(ok=found["status"] == 1, block=int(found["blockNumber"]))

    async def head(self) -> int:
        return int(await self._w3.eth.block_number)

    async def mined_nonce(self) -> int:
        """How many of the signer's transactions are mined (the next nonce the chain expects)."""
        return int(await self._w3.eth.get_transaction_count(self._account.address, "latest"))
