"""The treasury's rules: exchange rates finance staff set, conversions at those rates, statements,
payment methods (sealed at rest, shown masked), and deposits through a provider.

Finance staff are the app's admins (and its server key). A rate is stored per pair as a decimal
string and recorded on every conversion made with it; a conversion is one ledger transaction
through the ``exchange`` account. Statements read the ledger's postings of one wallet account.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import StatementOut, TransactionOut, WalletOwnerKind
from questline.sponsors import sealing
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller
from questline.treasury import providers
from questline.treasury import repository as repo
from questline.treasury.models import Deposit, PaymentMethod
from questline.treasury.schemas import (
    BankAccountIn,
    ConfirmIn,
    ConversionIn,
    DepositOut,
    DepositRequestIn,
    FailIn,
    PaymentMethodIn,
    PaymentMethodOut,
    PaypalIn,
    RateOut,
)

_log = structlog.get_logger("questline.treasury")
MAX_METHODS_PER_OWNER = 20

# Rates ----------------------------------------------------------------------------------------


async def put_rate(session: AsyncSession, clock: Clock, caller: Caller, base: str, quote: str,
                   rate: str) -> RateOut:
    """Set what one ``base`` buys of ``quote``; conversions from then on use it."""
    if base == quote:
        raise Unprocessable("a rate needs two different currencies", code="same_currency")
    value = ledger.parse_rate(rate)
    for code in (base, quote):
        await ledger.ensure_currency(session, clock, caller.app, code)
    await repo.put_rate(session, caller.app, base, quote, str(value), caller.identity, clock.now())
    found = await repo.get_rate(session, caller.app, base, quote)
    assert found is not None
    await session.refresh(found)
    return RateOut.model_validate(found)


async def list_rates(session: AsyncSession, app_id: str) -> list[RateOut]:
    return [RateOut.model_validate(r) for r in await repo.list_rates(session, app_id)]


# Wallet owners --------------------------------------------------------------------------------


async def authorize_owner(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind,
                          owner_id: str) -> None:
    """The caller may act on this wallet: a brand's own token or member, a streamer themself, or trusted."""
    if owner_kind == "brand":
        await sponsors.authorize_brand(session, caller, owner_id)
    elif owner_kind == "streamer":
        sponsors.authorize_streamer(caller, owner_id)
        await sponsors.get_streamer(session, caller.app, owner_id)


# Conversions ----------------------------------------------------------------------------------


async def convert(session: AsyncSession, clock: Clock, caller: Caller, owner_kind: WalletOwnerKind, owner_id: str,
                  body: ConversionIn, idempotency_key: str) -> TransactionOut:
    """Exchange the owner's money at the rate finance staff set for the pair (``422 no_rate`` without one)."""
    await authorize_owner(session, caller, owner_kind, owner_id)
    rate = await repo.get_rate(session, caller.app, body.source, body.target)
    if rate is None:
        raise Unprocessable(f"no rate is set from {body.source} to {body.target}; finance staff set one with "
                            f"PUT /v1/finance/rates/{body.source}/{body.target}", code="no_rate",
                            extra={"from": body.source, "to": body.target})
    reference: dict[str, Any] = {**(body.reference or {}), "rate_set_at": rate.set_at.isoformat(),
                                 "rate_set_by": rate.set_by}
    return await ledger.convert(session, clock, app_id=caller.app, owner_kind=owner_kind, owner_id=owner_id,
                                source=body.source, target=body.target, amount=body.amount, rate=rate.rate,
                                idempotency_key=f"conversion:{owner_kind}:{owner_id}:{idempotency_key}",
                                reference=reference, actor=caller.identity)


# Statements -----------------------------------------------------------------------------------


async def statement(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind, owner_id: str, *,
                    currency: str, start: datetime, end: datetime, sub: str) -> StatementOut:
    await authorize_owner(session, caller, owner_kind, owner_id)
    return await ledger.statement(session, app_id=caller.app, owner_kind=owner_kind, owner_id=owner_id,
                                  currency=currency, start=start, end=end, sub=sub)


# Payment methods ------------------------------------------------------------------------------


def _mask(details: PaymentMethodIn) -> str:
    if isinstance(details, BankAccountIn):
        if details.iban:
            return f"{details.holder}, IBAN {details.iban[:4]} **** {details.iban[-4:]}"
        assert details.account_number is not None
        return f"{details.holder}, account **** {details.account_number[-4:]}"
    if isinstance(details, PaypalIn):
        name, _, domain = details.email.partition("@")
        return f"{name[0]}***@{domain}"
    return f"{details.token[:4]}...{details.token[-4:]}"


def _context(app_id: str, method_id: str) -> str:
    return f"treasury:payment-method:{app_id}:{method_id}"


async def add_method(session: AsyncSession, runtime: Runtime, caller: Caller, owner_kind: WalletOwnerKind,
                     owner_id: str, details: PaymentMethodIn) -> PaymentMethodOut:
    """Store a payment method sealed (AES-GCM with the data key, bound to its row); answer it masked."""
    await authorize_owner(session, caller, owner_kind, owner_id)
    if isinstance(details, BankAccountIn) and not (details.iban or details.account_number):
        raise Unprocessable("a bank account needs an iban or an account_number", code="invalid_payment_method")
    if await repo.count_methods(session, caller.app, owner_kind, owner_id) >= MAX_METHODS_PER_OWNER:
        raise Unprocessable(f"at most {MAX_METHODS_PER_OWNER} payment methods per account",
                            code="too_many_payment_methods")
    method_id = new_id("pm")
    plain = orjson.dumps(details.model_dump(exclude_none=True))
    sealed = sealing.seal(sealing.data_key(runtime.settings), plain, _context(caller.app, method_id))
    await repo.insert_method(session, {
        "id": method_id, "app_id": caller.app, "owner_kind": owner_kind, "owner_id": owner_id, "kind": details.kind,
        "sealed": sealed, "masked": _mask(details), "created_at": runtime.clock.now(), "removed_at": None})
    found = await repo.get_method(session, caller.app, method_id)
    assert found is not None
    return PaymentMethodOut.model_validate(found)


async def list_methods(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind,
                       owner_id: str) -> list[PaymentMethodOut]:
    await authorize_owner(session, caller, owner_kind, owner_id)
    return [PaymentMethodOut.model_validate(m) for m in await repo.list_methods(session, caller.app, owner_kind,
                                                                                 owner_id)]


async def owned_method(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str,
                       method_id: str) -> PaymentMethod:
    method = await repo.get_method(session, app_id, method_id)
    if method is None or (method.owner_kind, method.owner_id) != (owner_kind, owner_id):
        raise NotFound(f"payment method {method_id} not found", code="payment_method_not_found")
    return method


async def remove_method(session: AsyncSession, clock: Clock, caller: Caller, owner_kind: WalletOwnerKind,
                        owner_id: str, method_id: str) -> None:
    await authorize_owner(session, caller, owner_kind, owner_id)
    await owned_method(session, caller.app, owner_kind, owner_id, method_id)
    await repo.remove_method(session, caller.app, method_id, clock.now())


def method_details(runtime: Runtime, method: PaymentMethod) -> dict[str, str]:
    """The unsealed details, for paying out (never answered to anyone)."""
    plain = sealing.unseal(sealing.data_key(runtime.settings), method.sealed, _context(method.app_id, method.id))
    details = orjson.loads(plain)
    assert isinstance(details, dict)
    return {str(k): str(v) for k, v in details.items()}


# Deposits -------------------------------------------------------------------------------------


def _deposit_out(deposit: Deposit) -> DepositOut:
    return DepositOut.model_validate(deposit)


async def request_deposit(session: AsyncSession, runtime: Runtime, caller: Caller, owner_kind: WalletOwnerKind,
                          owner_id: str, body: DepositRequestIn, idempotency_key: str) -> DepositOut:
    """Start a deposit with a provider; it stays pending (nothing is credited) until confirmed."""
    await authorize_owner(session, caller, owner_kind, owner_id)
    clock = runtime.clock
    await ledger.ensure_currency(session, clock, caller.app, body.currency)
    provider = providers.provider(runtime.settings, body.provider)
    token = None
    if body.payment_method_id is not None:
        method = await owned_method(session, caller.app, owner_kind, owner_id, body.payment_method_id)
        if method.kind != "psp_token" or body.provider != "psp":
            raise Unprocessable("only a psp_token payment method can be charged, through the psp provider",
                                code="invalid_payment_method")
        token = method_details(runtime, method)["token"]
    deposit_id = new_id("dep")
    # The same request retried (same caller, owner and Idempotency-Key) sends the provider the same key.
    key = hashlib.sha256(f"deposit:{caller.app}:{owner_kind}:{owner_id}:{idempotency_key}".encode()).hexdigest()
    started = await provider.start_deposit(key=key, deposit_id=deposit_id, app_id=caller.app,
                                           currency=body.currency, amount=body.amount, token=token)
    now = clock.now()
    inserted = await repo.insert_deposit(session, {
        "id": deposit_id, "app_id": caller.app, "owner_kind": owner_kind, "owner_id": owner_id,
        "currency": body.currency, "amount": body.amount, "provider": provider.name,
        "provider_ref": started.reference, "status": "pending", "instructions": started.instructions,
        "confirmation": None, "failure_reason": None, "transaction_id": None, "created_by": caller.identity,
        "settled_by": None, "created_at": now, "settled_at": None})
    found = (await repo.get_deposit(session, caller.app, deposit_id) if inserted
             else await repo.deposit_by_ref(session, caller.app, provider.name, started.reference))
    assert found is not None
    return _deposit_out(found)


async def get_deposit(session: AsyncSession, app_id: str, deposit_id: str) -> Deposit:
    found = await repo.get_deposit(session, app_id, deposit_id)
    if found is None:
        raise NotFound(f"deposit {deposit_id} not found", code="deposit_not_found")
    return found


async def deposit_of(session: AsyncSession, caller: Caller, deposit_id: str) -> DepositOut:
    found = await get_deposit(session, caller.app, deposit_id)
    if caller.account_id is not None and caller.account_id != found.owner_id:
        raise NotFound(f"deposit {deposit_id} not found", code="deposit_not_found")
    return _deposit_out(found)


async def list_deposits(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind, owner_id: str,
                        paging: PageParams) -> Page[DepositOut]:
    await authorize_owner(session, caller, owner_kind, owner_id)
    rows = await repo.list_deposits(session, caller.app, owner_kind, owner_id, before=paging.after_str(),
                                    limit=paging.limit)
    page = build_page(list(rows), paging.limit, lambda d: [d.id])
    return Page[DepositOut](items=[_deposit_out(d) for d in page.items], next_cursor=page.next_cursor)


async def credit(session: AsyncSession, clock: Clock, deposit: Deposit, *, confirmation: str,
                  actor: str) -> tuple[Deposit, bool]:
    """Confirm a pending deposit and credit it, once: (the deposit, whether this call credited it)."""
    now = clock.now()
    won = await repo.settle_deposit(session, deposit.app_id, deposit.id, status="confirmed", values={
        "confirmation": confirmation, "settled_by": actor, "settled_at": now})
    if won:
        txn = await ledger.deposit(
            session, clock, app_id=deposit.app_id, owner_kind=deposit.owner_kind,  # type: ignore[arg-type]
            owner_id=deposit.owner_id, currency=deposit.currency, amount=deposit.amount,
            idempotency_key=f"treasury:deposit:{deposit.id}",
            reference={"deposit_id": deposit.id, "provider": deposit.provider, "confirmation": confirmation},
            actor=actor)
        await repo.settle_deposit_transaction(session, deposit.app_id, deposit.id, txn.id)
    found = await get_deposit(session, deposit.app_id, deposit.id)
    return found, won


async def confirm_deposit(session: AsyncSession, clock: Clock, caller: Caller, deposit_id: str,
                          body: ConfirmIn) -> DepositOut:
    """Finance staff record a bank transfer as received: the deposit is credited (once)."""
    deposit = await get_deposit(session, caller.app, deposit_id)
    if deposit.provider != "manual":
        raise Conflict("a PSP deposit is confirmed by its provider's webhook", code="deposit_not_manual")
    if body.amount != deposit.amount:
        raise Unprocessable(f"the deposit expects {deposit.amount}, not {body.amount}; record what was asked for "
                            "or fail it and ask for a new one", code="amount_mismatch",
                            extra={"expected": deposit.amount})
    found, won = await credit(session, clock, deposit, confirmation=body.reference, actor=caller.identity)
    if not won:
        if found.status != "confirmed":
            raise Conflict(f"deposit {deposit_id} is {found.status}", code="deposit_not_pending")
        if found.confirmation != body.reference:
            raise Conflict(f"deposit {deposit_id} was already confirmed with another reference",
                           code="deposit_already_confirmed", extra={"confirmation": found.confirmation})
    return _deposit_out(found)


async def fail_deposit(session: AsyncSession, clock: Clock, caller: Caller, deposit_id: str,
                       body: FailIn) -> DepositOut:
    """Finance staff give up on a pending deposit (the money never came); nothing was credited."""
    await get_deposit(session, caller.app, deposit_id)
    won = await repo.settle_deposit(session, caller.app, deposit_id, status="failed", values={
        "failure_reason": body.reason, "settled_by": caller.identity, "settled_at": clock.now()})
    found = await get_deposit(session, caller.app, deposit_id)
    if not won and found.status != "failed":
        raise Conflict(f"deposit {deposit_id} is {found.status}", code="deposit_not_pending")
    return _deposit_out(found)
