"""The ledger's rules: balanced double entry, no player below zero, one transaction per key.

Every change of a balance is a transaction whose postings sum to zero per currency. Points
come into being by debiting the app's ``issuance`` account (the one account allowed below
zero) and leave by crediting its ``sink``; holds park them in ``holds`` until a purchase
commits or releases them. Balances move only through a conditional ``UPDATE`` that refuses
to take a guarded account below zero, so concurrent spends cannot overdraw a player.

Wallets (brands, streamers, the platform) hold fiat money (ISO 4217 codes, amounts in minor
units) in the same books: each owner has an available account and sub-accounts for what is
held (``hold:<ref>``, e.g. a campaign's budget) and what is pending (earnings not yet released).
Money enters from, and leaves to, the ``external`` system account (the one other account
allowed below zero: it mirrors what the platform holds outside, in its bank).

Each transaction carries an idempotency key, unique per app: posting the same key with the
same effect returns the original transaction (``replayed``), with a different effect is
``422 idempotency_key_reused``. The event pipeline relies on this to re-post rewards safely.

Services take the caller's session and never commit. A refused posting rolls back to a
savepoint, so a caller that catches the problem keeps a clean session.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import PageParams, build_page
from questline.ledger import repository as repo
from questline.ledger.models import Hold
from questline.ledger.schemas import (
    ACCOUNT_ID_PATTERN,
    CURRENCY_PATTERN,
    FIAT_PATTERN,
    KIND_PATTERN,
    MAX_AMOUNT,
    MAX_REFERENCE_KEYS,
    SOURCE_PATTERN,
    SUB_PATTERN,
    SYSTEM_OWNER_PATTERN,
    AccountRef,
    BalanceOut,
    BalancesOut,
    CurrencyOut,
    CurrencyTotals,
    HistoryEntry,
    HistoryOut,
    HistorySummary,
    HoldOut,
    HoldSpending,
    PostingOut,
    StatementLine,
    StatementOut,
    TransactionOut,
    Violation,
    WalletBalance,
    WalletOut,
    WalletOwnerKind,
)
from questline.players import service as players
from questline.players.schemas import PLAYER_ID_PATTERN

__all__ = [
    "EXCHANGE", "EXTERNAL", "HOLDS", "ISO_4217", "ISSUANCE", "PENDING", "PLATFORM_REVENUE", "SINK", "Credit",
    "adjust_player", "balances_of", "commit_hold", "convert", "create_hold", "credit_player", "currency_exists",
    "debit_player", "deposit", "ensure_currency", "get_hold", "hold_funds", "hold_spending", "hold_sub",
    "ledger_totals", "list_currencies", "lock_accounts", "movements", "pay_from_hold", "player_balances",
    "player_history",
    "post_credits", "put_currency", "release_expired_holds", "release_held", "release_hold", "release_pending",
    "statement", "transfer", "verify", "wallet_balance", "wallet_of",
]

_log = structlog.get_logger("questline.ledger")
ISSUANCE, SINK, HOLDS, EXTERNAL = "issuance", "sink", "holds", "external"
# Conversions between currencies pass through it: it takes one currency and pays out the other.
EXCHANGE = "exchange"
# May go below zero: points are issued from ``issuance``; fiat comes in from (and goes out to) ``external``;
# ``exchange`` is the platform's position per currency after conversions (short in what it paid out).
_NEGATIVE_ALLOWED = frozenset({ISSUANCE, EXTERNAL, EXCHANGE})
PENDING = "pending"
PLATFORM_REVENUE = "revenue"
WALLET_KINDS = frozenset({"brand", "streamer", "platform"})
# ISO 4217 minor units of the currencies an app gets without saying (an app adds others with their exponent).
ISO_4217: dict[str, tuple[str, int]] = {
    "USD": ("US dollar", 2), "EUR": ("Euro", 2), "GBP": ("Pound sterling", 2), "JPY": ("Japanese yen", 0),
    "CHF": ("Swiss franc", 2), "CAD": ("Canadian dollar", 2), "AUD": ("Australian dollar", 2),
    "NZD": ("New Zealand dollar", 2), "SEK": ("Swedish krona", 2), "NOK": ("Norwegian krone", 2),
    "DKK": ("Danish krone", 2), "PLN": ("Polish zloty", 2), "CZK": ("Czech koruna", 2),
    "HUF": ("Hungarian forint", 2), "RON": ("Romanian leu", 2), "BGN": ("Bulgarian lev", 2),
    "CNY": ("Renminbi", 2), "HKD": ("Hong Kong dollar", 2), "SGD": ("Singapore dollar", 2),
    "TWD": ("New Taiwan dollar", 2), "KRW": ("South Korean won", 0), "INR": ("Indian rupee", 2),
    "IDR": ("Indonesian rupiah", 2), "THB": ("Thai baht", 2), "PHP": ("Philippine peso", 2),
    "MYR": ("Malaysian ringgit", 2), "VND": ("Vietnamese dong", 0), "BRL": ("Brazilian real", 2),
    "MXN": ("Mexican peso", 2), "ARS": ("Argentine peso", 2), "CLP": ("Chilean peso", 0),
    "COP": ("Colombian peso", 2), "PEN": ("Peruvian sol", 2), "ZAR": ("South African rand", 2),
    "TRY": ("Turkish lira", 2), "ILS": ("Israeli new shekel", 2), "AED": ("UAE dirham", 2),
    "SAR": ("Saudi riyal", 2), "KWD": ("Kuwaiti dinar", 3), "BHD": ("Bahraini dinar", 3),
    "OMR": ("Omani rial", 3), "JOD": ("Jordanian dinar", 3), "TND": ("Tunisian dinar", 3),
    "ISK": ("Icelandic krona", 0), "UAH": ("Ukrainian hryvnia", 2), "EGP": ("Egyptian pound", 2),
    "NGN": ("Nigerian naira", 2), "KES": ("Kenyan shilling", 2),
}
MAX_CURRENCIES_PER_APP = 100
MAX_IDEMPOTENCY_KEY = 255
MAX_HOLD_TTL = 3600
# Kinds only this module posts; ``hold_release`` undoes a hold, so it counts against "spent".
# ``wallet_release`` gives back what a wallet hold set aside.
_RESERVED_KINDS = frozenset({"hold", "hold_commit", "hold_release", "wallet_hold", "wallet_release"})
_REVERSING_KINDS = ("hold_release", "wallet_release")
_CURRENCY = re.compile(CURRENCY_PATTERN)
_KIND = re.compile(KIND_PATTERN)
_SOURCE = re.compile(SOURCE_PATTERN)
_PLAYER = re.compile(PLAYER_ID_PATTERN)
_SYSTEM = re.compile(SYSTEM_OWNER_PATTERN)
_FIAT = re.compile(FIAT_PATTERN)
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_SUB = re.compile(SUB_PATTERN)


# Currencies -----------------------------------------------------------------------------------


def _check_code(code: str) -> None:
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise Unprocessable(f"{code!r} is not a currency code (points: lowercase letters, digits and _, e.g. "
                            "points; money: three capitals, e.g. USD)", code="invalid_currency")


def _fiat_exponent(code: str, exponent: int | None) -> int:
    """The exponent a fiat currency gets: its ISO 4217 one, or the one given for a code we do not know."""
    known = ISO_4217.get(code)
    if known is not None:
        if exponent is not None and exponent != known[1]:
            raise Unprocessable(f"{code} has {known[1]} decimal places (ISO 4217), not {exponent}",
                                code="exponent_mismatch", extra={"exponent": known[1]})
        return known[1]
    if exponent is None:
        raise Unprocessable(f"{code} is not an ISO 4217 code this engine knows; give its exponent (decimal places)",
                            code="exponent_required")
    return exponent


async def currency_exists(session: AsyncSession, app_id: str, code: str) -> bool:
    return await repo.get_currency(session, app_id, code) is not None


async def ensure_currency(session: AsyncSession, clock: Clock, app_id: str, code: str, name: str | None = None) -> None:
    """Create the currency if the app lacks it; an existing one is left as it is.

    A fiat code (three capitals) must be an ISO 4217 code this engine knows, or already defined by the app.
    """
    _check_code(code)
    if _FIAT.match(code):
        if await repo.get_currency(session, app_id, code) is not None:
            return
        known = ISO_4217.get(code)
        if known is None:
            raise Unprocessable(f"currency {code!r} is not defined for this app; create it with "
                                f"PUT /v1/currencies/{code} and its exponent", code="unknown_currency",
                                extra={"currency": code})
        await repo.insert_currency(session, app_id, code, name or known[0], clock.now(), kind="fiat",
                                   exponent=known[1])
        return
    await repo.insert_currency(session, app_id, code, name or code.replace("_", " ").title(), clock.now())


async def put_currency(session: AsyncSession, clock: Clock, app_id: str, code: str,
                       name: str, exponent: int | None = None) -> tuple[CurrencyOut, bool]:
    """Create or rename a currency; returns it and whether it was created.

    Points (lowercase codes) have no decimal places; fiat (ISO 4217 codes) has its own, fixed once made.
    """
    _check_code(code)
    fiat = bool(_FIAT.match(code))
    if not fiat and exponent not in (None, 0):
        raise Unprocessable("points have no decimal places; exponent applies to fiat codes (USD, EUR, ...)",
                            code="invalid_exponent")
    now = clock.now()
    existing = await repo.get_currency(session, app_id, code)
    if existing is None:
        wanted = _fiat_exponent(code, exponent) if fiat else 0
        if await repo.count_currencies(session, app_id) >= MAX_CURRENCIES_PER_APP:
            raise Unprocessable(f"an app may have at most {MAX_CURRENCIES_PER_APP} currencies",
                                code="too_many_currencies")
        created = await repo.insert_currency(session, app_id, code, name, now, kind="fiat" if fiat else "points",
                                             exponent=wanted)
    else:
        if exponent is not None and exponent != existing.exponent:
            raise Unprocessable(f"{code} has {existing.exponent} decimal places; they cannot change once it exists",
                                code="exponent_mismatch", extra={"exponent": existing.exponent})
        created = False
    if not created:
        await repo.rename_currency(session, app_id, code, name, now)
    currency = await repo.get_currency(session, app_id, code)
    assert currency is not None
    await session.refresh(currency)
    return CurrencyOut.model_validate(currency), created


async def list_currencies(session: AsyncSession, app_id: str) -> list[CurrencyOut]:
    return [CurrencyOut.model_validate(c) for c in await repo.list_currencies(session, app_id)]


# Posting --------------------------------------------------------------------------------------


def _check_amount(amount: Any, *, signed: bool = False) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Unprocessable("amounts are integers in minor units", code="invalid_amount")
    if amount == 0 or (amount < 0 and not signed) or abs(amount) > MAX_AMOUNT:
        want = "non-zero" if signed else "positive"
        raise Unprocessable(f"amount must be a {want} integer no larger than {MAX_AMOUNT} in size",
                            code="invalid_amount")
    return amount


def _check_ref(ref: AccountRef) -> None:
    _check_code(ref.currency)
    pattern = {"player": _PLAYER, "system": _SYSTEM, "brand": _ACCOUNT, "streamer": _ACCOUNT,
               "platform": _SYSTEM}.get(ref.owner_kind)
    if pattern is None or not isinstance(ref.owner_id, str) or not pattern.match(ref.owner_id):
        raise Unprocessable(f"{ref.owner_kind}:{ref.owner_id!r} is not a valid account owner", code="invalid_account")
    if not isinstance(ref.sub, str) or not _SUB.match(ref.sub) or (ref.sub and ref.owner_kind not in WALLET_KINDS):
        raise Unprocessable(f"{ref.sub!r} is not a sub-account of {ref.owner_kind}:{ref.owner_id}",
                            code="invalid_account")


def _check_meta(idempotency_key: str, *, kind: str, source: str, reference: dict[str, Any] | None,
                description: str | None, actor: str | None) -> None:
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise Unprocessable(f"the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
                            code="invalid_idempotency_key")
    if not _KIND.match(kind):
        raise Unprocessable(f"{kind!r} is not a transaction kind", code="invalid_kind")
    if not _SOURCE.match(source):
        raise Unprocessable(f"{source!r} is not a source (lowercase, e.g. level_up)", code="invalid_source")
    if reference is not None and (not isinstance(reference, dict) or len(reference) > MAX_REFERENCE_KEYS
                                  or len(orjson.dumps(reference)) > 4096):
        raise Unprocessable(f"reference must be an object of at most {MAX_REFERENCE_KEYS} keys and 4 KiB",
                            code="invalid_reference")
    if description is not None and len(description) > 500:
        raise Unprocessable("description is limited to 500 characters", code="invalid_description")
    if actor is not None and len(actor) > 160:
        raise Unprocessable("actor is limited to 160 characters", code="invalid_actor")


def _fingerprint(kind: str, source: str, entries: Sequence[tuple[AccountRef, int]], reference: Any,
                 description: str | None) -> str:
    """What a transaction does; the actor is who asked, not what, and is left out."""
    body = {
        "kind": kind, "source": source, "reference": reference, "description": description,
        "entries": sorted([ref.owner_kind, ref.owner_id, ref.currency, amount] for ref, amount in entries),
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _lifetime(amount: int, reversing: bool) -> tuple[int, int]:
    """(credited, debited) deltas. A reversal undoes an earlier movement instead of adding one."""
    if amount > 0:
        return (0, -amount) if reversing else (amount, 0)
    return (amount, 0) if reversing else (0, -amount)


async def _post(session: AsyncSession, clock: Clock, *, app_id: str, entries: Sequence[tuple[AccountRef, int]],
                idempotency_key: str, kind: str, source: str, reference: dict[str, Any] | None,
                description: str | None, actor: str | None, match: Any = None) -> TransactionOut:
    """Post one balanced transaction, or replay the one already posted under its key.

    ``match`` replaces the reference in the replay comparison when the reference carries
    ids generated per attempt (a hold's id).
    """
    _check_meta(idempotency_key, kind=kind, source=source, reference=reference, description=description,
                actor=actor)
    if len(entries) < 2:
        raise Unprocessable("a transaction needs at least two postings", code="unbalanced_transaction")
    sums: dict[str, int] = {}
    for ref, amount in entries:
        _check_ref(ref)
        _check_amount(amount, signed=True)
        sums[ref.currency] = sums.get(ref.currency, 0) + amount
    if len({ref for ref, _ in entries}) != len(entries):
        raise Unprocessable("each account may appear once per transaction", code="duplicate_account")
    if any(sums.values()):
        raise Unprocessable(f"postings must sum to zero per currency (got {sums})", code="unbalanced_transaction")
    missing = set(sums) - await repo.known_currencies(session, app_id, set(sums))
    if missing:
        code = sorted(missing)[0]
        raise Unprocessable(f"currency {code!r} is not defined for this app; create it with PUT /v1/currencies/{code}",
                            code="unknown_currency", extra={"currency": code})

    request_hash = _fingerprint(kind, source, entries, reference if match is None else match, description)
    now = clock.now()
    txn_id = new_id("txn")
    reversing = kind in _REVERSING_KINDS
    async with session.begin_nested():
        inserted = await repo.insert_transaction(session, {
            "id": txn_id, "app_id": app_id, "idempotency_key": idempotency_key, "request_hash": request_hash,
            "kind": kind, "source": source, "reference": reference, "description": description, "actor": actor,
            "created_at": now,
        })
        if not inserted:
            return await _replay(session, app_id, idempotency_key, request_hash)

        player_ids = sorted({ref.owner_id for ref, _ in entries if ref.owner_kind == "player"})
        if player_ids:
            await players.ensure_players(session, clock, app_id, player_ids)
        ids = await _account_ids(session, app_id, [ref for ref, _ in entries], now)

        applied: dict[AccountRef, tuple[int, int]] = {}
        # Lock accounts in id order so concurrent transactions can never wait on each other in a cycle.
        for ref, amount in sorted(entries, key=lambda e: ids[e[0]]):
            credited, debited = _lifetime(amount, reversing)
            result = await repo.apply_posting(session, ids[ref], amount, credited, debited)
            if result is None:
                raise _insufficient(ref, -amount, await repo.balance_of(session, ids[ref]))
            applied[ref] = result
        # Stored (and so replayed) in the caller's order, whatever order the accounts were locked in.
        postings = [PostingOut(owner_kind=ref.owner_kind, owner_id=ref.owner_id, currency=ref.currency, sub=ref.sub,
                               amount=amount,
                               balance_before=applied[ref][0] - amount, balance_after=applied[ref][0],
                               seq=applied[ref][1])
                    for ref, amount in entries]
        await repo.insert_postings(session, [
            {"transaction_id": txn_id, "app_id": app_id, "account_id": ids[ref], "currency": p.currency,
             "amount": p.amount, "balance_before": p.balance_before, "balance_after": p.balance_after,
             "account_seq": p.seq}
            for (ref, _), p in zip(entries, postings, strict=True)
        ])
    return TransactionOut(id=txn_id, idempotency_key=idempotency_key, kind=kind, source=source,
                          reference=reference, description=description, actor=actor, created_at=now,
                          postings=postings)


async def _account_ids(session: AsyncSession, app_id: str, refs: list[AccountRef], now: Any) -> dict[AccountRef, int]:
    ids = await repo.account_ids(session, app_id, refs)
    missing = [ref for ref in refs if ref not in ids]
    if missing:
        await repo.insert_accounts(
            session, app_id,
            [(ref, ref.owner_kind == "system" and ref.owner_id in _NEGATIVE_ALLOWED) for ref in missing], now,
        )
        ids.update(await repo.account_ids(session, app_id, missing))
    return ids


def _insufficient(ref: AccountRef, required: int, current: int) -> Conflict:
    shortfall = required - current
    who = {"player": "the player", "system": f"system account {ref.owner_id}"}.get(
        ref.owner_kind, f"{ref.owner_kind} {ref.owner_id}{' (' + ref.sub + ')' if ref.sub else ''}")
    return Conflict(f"{who} needs {shortfall:,} more {ref.currency}", code="insufficient_funds",
                    extra={"currency": ref.currency, "required": required, "current": current,
                           "shortfall": shortfall})


async def _replay(session: AsyncSession, app_id: str, key: str, request_hash: str) -> TransactionOut:
    existing = await repo.transaction_by_key(session, app_id, key)
    if existing is None:  # pragma: no cover - the conflicting row is committed or ours
        raise Conflict("a transaction with this idempotency key is being written", code="idempotency_key_in_flight")
    if existing.request_hash != request_hash:
        raise Unprocessable("this idempotency key was already used for a different transaction",
                            code="idempotency_key_reused", extra={"transaction_id": existing.id})
    return await _transaction_out(session, existing.id, existing, replayed=True)


async def _transaction_out(session: AsyncSession, txn_id: str, txn: Any, *, replayed: bool) -> TransactionOut:
    postings = [PostingOut(owner_kind=kind, owner_id=owner, currency=currency, sub=sub, amount=amount,
                           balance_before=before, balance_after=after, seq=seq)
                for kind, owner, currency, amount, before, after, seq, sub in await repo.postings_of(session, txn_id)]
    return TransactionOut(id=txn.id, idempotency_key=txn.idempotency_key, kind=txn.kind, source=txn.source,
                          reference=txn.reference, description=txn.description, actor=txn.actor,
                          created_at=txn.created_at, postings=postings, replayed=replayed)


async def lock_accounts(session: AsyncSession, clock: Clock, *, app_id: str, accounts: Sequence[AccountRef]) -> None:
    """Create and lock, in id order, every account a unit of work will post to.

    One posting locks its accounts in id order, but a caller posting several transactions in one
    unit of work (a hold and then its commit: player, ``holds``, then ``holds``, ``sink``) would
    otherwise take them in its own sequence and could deadlock with a racing spend. Calling this
    first puts every lock in the one global order.
    """
    for ref in accounts:
        _check_ref(ref)
    player_ids = sorted({ref.owner_id for ref in accounts if ref.owner_kind == "player"})
    if player_ids:
        await players.ensure_players(session, clock, app_id, player_ids)
    ids = await _account_ids(session, app_id, list(accounts), clock.now())
    await repo.lock_accounts(session, list(ids.values()))


async def credit_player(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, currency: str,
                        amount: int, idempotency_key: str, source: str, reference: dict[str, Any] | None = None,
                        description: str | None = None, actor: str | None = None) -> TransactionOut:
    """Issue ``amount`` new units to a player (issuance -> player); creates the player if new."""
    _check_amount(amount)
    credit = Credit(player_id, currency, amount, idempotency_key, source, reference, description, actor)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="credit", source=source,
                       entries=_credit_entries(credit), reference=reference, description=description, actor=actor)


@dataclass(frozen=True)
class Credit:
    """One issuance to a player, as ``credit_player`` posts it, for ``post_credits``."""

    player_id: str
    currency: str
    amount: int
    idempotency_key: str
    source: str
    reference: dict[str, Any] | None = None
    description: str | None = None
    actor: str | None = None


async def post_credits(session: AsyncSession, clock: Clock, *, app_id: str, credits: Sequence[Credit],
                       existing_players: Collection[str] = ()) -> list[str | None]:
    """Post many credits (issuance -> player) in a handful of statements, whatever their number.

    Each is the transaction ``credit_player`` would post (same key, postings, balances and
    per-account chain); the worker pays a batch's rewards this way. Returns, per credit, the id
    of the transaction posted, or None where its key had already posted one (whatever it did:
    paid is paid) or its currency is unknown (logged). Credits only raise player balances and
    lower the issuance account, which may go negative, so none can be refused for funds.
    Players in ``existing_players`` are known to exist in this transaction (a worker batch's):
    they are not looked up again.
    """
    for credit in credits:
        _check_amount(credit.amount)
        _check_meta(credit.idempotency_key, kind="credit", source=credit.source, reference=credit.reference,
                    description=credit.description, actor=credit.actor)
        _check_ref(AccountRef.player(credit.player_id, credit.currency))
    known = await repo.known_currencies(session, app_id, {c.currency for c in credits}) if credits else set()
    now = clock.now()
    wanted: dict[str, tuple[int, Credit, str]] = {}  # idempotency key -> (position, credit, transaction id)
    for position, credit in enumerate(credits):
        if credit.currency not in known:
            _log.error("credit_skipped_unknown_currency", currency=credit.currency, key=credit.idempotency_key)
        elif credit.idempotency_key not in wanted:  # the same key twice in one call posts once
            wanted[credit.idempotency_key] = (position, credit, new_id("txn"))
    posted = await repo.insert_transactions(session, [
        {"id": txn_id, "app_id": app_id, "idempotency_key": key, "kind": "credit", "source": c.source,
         "request_hash": _fingerprint("credit", c.source, _credit_entries(c), c.reference, c.description),
         "reference": c.reference, "description": c.description, "actor": c.actor, "created_at": now}
        for key, (_, c, txn_id) in wanted.items()])
    fresh = [(position, credit, txn_id) for key, (position, credit, txn_id) in wanted.items() if key in posted]
    out: list[str | None] = [None] * len(credits)
    if not fresh:
        return out
    unseen = {c.player_id for _, c, _ in fresh}.difference(existing_players)
    if unseen:
        await players.ensure_players(session, clock, app_id, sorted(unseen))
    entries = [(txn_id, ref, amount) for _, c, txn_id in fresh for ref, amount in _credit_entries(c)]
    ids = await _account_ids(session, app_id, sorted({ref for _, ref, _ in entries}), now)
    await repo.lock_accounts(session, list(ids.values()))
    per_account: dict[int, list[int]] = {}
    for _, ref, amount in entries:
        per_account.setdefault(ids[ref], []).append(amount)
    deltas = [{"id": account, "delta": sum(amounts), "n": len(amounts),
               "credited": sum(a for a in amounts if a > 0), "debited": -sum(a for a in amounts if a < 0)}
              for account, amounts in sorted(per_account.items())]
    after = await repo.apply_deltas(session, deltas)
    if len(after) != len(deltas):  # pragma: no cover - credits cannot overdraw; a schema bug if they do
        raise RuntimeError("a credit was refused by the balance guard")
    # Walk each account's postings in order, ending at the balance and seq the update returned.
    position_in_account: dict[int, tuple[int, int]] = {
        account: (balance - sum(per_account[account]), seq - len(per_account[account]))
        for account, (balance, seq) in after.items()}
    rows = []
    for txn_id, ref, amount in entries:
        account = ids[ref]
        balance, seq = position_in_account[account]
        position_in_account[account] = (balance + amount, seq + 1)
        rows.append({"transaction_id": txn_id, "app_id": app_id, "account_id": account, "currency": ref.currency,
                     "amount": amount, "balance_before": balance, "balance_after": balance + amount,
                     "account_seq": seq + 1})
    await repo.insert_postings(session, rows)
    for position, _, txn_id in fresh:
        out[position] = txn_id
    return out


def _credit_entries(credit: Credit) -> list[tuple[AccountRef, int]]:
    return [(AccountRef.system(ISSUANCE, credit.currency), -credit.amount),
            (AccountRef.player(credit.player_id, credit.currency), credit.amount)]


async def debit_player(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, currency: str,
                       amount: int, idempotency_key: str, source: str, reference: dict[str, Any] | None = None,
                       description: str | None = None, actor: str | None = None) -> TransactionOut:
    """Take ``amount`` from a player (player -> sink); ``409 insufficient_funds`` if it would go below zero."""
    _check_amount(amount)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="debit", source=source,
                       entries=[(AccountRef.player(player_id, currency), -amount),
                                (AccountRef.system(SINK, currency), amount)],
                       reference=reference, description=description, actor=actor)


async def adjust_player(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, currency: str,
                        amount: int, reason: str, actor: str, idempotency_key: str) -> TransactionOut:
    """An admin's correction: positive comes from issuance, negative goes to the sink; never below zero."""
    _check_amount(amount, signed=True)
    if not 3 <= len(reason.strip()) <= 500:
        raise Unprocessable("an adjustment needs a reason of 3 to 500 characters", code="invalid_reason")
    counter = AccountRef.system(ISSUANCE if amount > 0 else SINK, currency)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="adjustment",
                       source="admin", entries=[(AccountRef.player(player_id, currency), amount), (counter, -amount)],
                       reference=None, description=reason.strip(), actor=actor)


async def transfer(session: AsyncSession, clock: Clock, *, app_id: str, entries: list[tuple[AccountRef, int]],
                   idempotency_key: str, kind: str, source: str, reference: dict[str, Any] | None = None,
                   description: str | None = None, actor: str | None = None) -> TransactionOut:
    """Any balanced movement between accounts (e.g. prize pools); only ``issuance`` may go below zero."""
    if kind in _RESERVED_KINDS:
        raise Unprocessable(f"kind {kind!r} is posted only by the ledger's holds", code="invalid_kind")
    return await _post(session, clock, app_id=app_id, entries=entries, idempotency_key=idempotency_key, kind=kind,
                       source=source, reference=reference, description=description, actor=actor)


# Balances and history -------------------------------------------------------------------------


async def player_balances(session: AsyncSession, app_id: str, player_id: str) -> dict[str, BalanceOut]:
    """Every currency of the app, zero where the player has no account yet."""
    accounts = {a.currency: a for a in await repo.owner_accounts(session, app_id, "player", player_id)}
    balances = {c.code: BalanceOut(currency=c.code, balance=0, lifetime_earned=0, lifetime_spent=0)
                for c in await repo.list_currencies(session, app_id)}
    for code, acc in accounts.items():
        balances[code] = BalanceOut(currency=code, balance=acc.balance, lifetime_earned=acc.lifetime_credited,
                                    lifetime_spent=acc.lifetime_debited)
    return balances


async def balances_of(session: AsyncSession, app_id: str, player_id: str) -> BalancesOut:
    """A known player's balances in every currency of the app (404 for an unknown player)."""
    await players.get_player(session, app_id, player_id)
    found = await player_balances(session, app_id, player_id)
    return BalancesOut(player_id=player_id, balances=list(found.values()))


async def player_history(session: AsyncSession, app_id: str, player_id: str, currency: str | None,
                         page: PageParams) -> HistoryOut:
    """The player's postings, newest first, with earned/spent totals per currency."""
    await players.get_player(session, app_id, player_id)
    if currency is not None and not await currency_exists(session, app_id, currency):
        raise Unprocessable(f"currency {currency!r} is not defined for this app", code="unknown_currency",
                            extra={"currency": currency})
    after = page.after()
    if after is not None and (len(after) != 1 or isinstance(after[0], bool) or not isinstance(after[0], int)):
        raise Unprocessable("the cursor is not one this API issued", code="invalid_cursor")
    rows = await repo.player_history(session, app_id, player_id, currency=currency,
                                     before_id=after[0] if after else None, limit=page.limit)
    built = build_page(list(rows), page.limit, lambda row: [row.id])
    accounts = await repo.owner_accounts(session, app_id, "player", player_id, currency)
    return HistoryOut(
        player_id=player_id,
        total=await repo.count_player_history(session, app_id, player_id, currency),
        items=[HistoryEntry(transaction_id=r.transaction_id, currency=r.currency, amount=r.amount,
                            balance_before=r.balance_before, balance_after=r.balance_after, kind=r.kind,
                            source=r.source, description=r.description, reference=r.reference, actor=r.actor,
                            created_at=r.created_at) for r in built.items],
        next_cursor=built.next_cursor,
        summary={a.currency: HistorySummary(total_earned=a.lifetime_credited, total_spent=a.lifetime_debited,
                                            net=a.balance) for a in accounts},
    )


# Holds ----------------------------------------------------------------------------------------


async def _hold_out(session: AsyncSession, hold: Hold) -> HoldOut:
    out = HoldOut.model_validate(hold)
    accounts = await repo.owner_accounts(session, hold.app_id, "player", hold.player_id, hold.currency)
    out.player_balance = accounts[0].balance if accounts else 0
    return out


async def get_hold(session: AsyncSession, app_id: str, hold_id: str) -> HoldOut:
    hold = await repo.get_hold(session, app_id, hold_id)
    if hold is None:
        raise NotFound(f"hold {hold_id} not found", code="hold_not_found")
    return await _hold_out(session, hold)


async def create_hold(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, currency: str,
                      amount: int, ttl_seconds: int = 60, idempotency_key: str | None = None,
                      reference: dict[str, Any] | None = None, actor: str | None = None) -> HoldOut:
    """Phase one of a purchase: move ``amount`` from the player into ``holds`` until commit or release."""
    _check_amount(amount)
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= MAX_HOLD_TTL:
        raise Unprocessable(f"ttl_seconds must be 1 to {MAX_HOLD_TTL}", code="invalid_ttl")
    hold_id = new_id("hold")
    now = clock.now()
    async with session.begin_nested():
        txn = await _post(
            session, clock, app_id=app_id, idempotency_key=idempotency_key or hold_id, kind="hold", source="hold",
            entries=[(AccountRef.player(player_id, currency), -amount), (AccountRef.system(HOLDS, currency), amount)],
            reference={**(reference or {}), "hold_id": hold_id}, description=None, actor=actor,
            match={"reference": reference, "ttl_seconds": ttl_seconds},
        )
        if txn.replayed:
            existing = await repo.hold_by_transaction(session, app_id, txn.id)
            if existing is None:  # pragma: no cover - a hold key's transaction always has its hold
                raise Unprocessable("this idempotency key was already used for a different transaction",
                                    code="idempotency_key_reused")
            return await _hold_out(session, existing)
        await repo.insert_hold(session, {
            "id": hold_id, "app_id": app_id, "player_id": player_id, "currency": currency, "amount": amount,
            "status": "active", "release_reason": None, "reference": reference, "hold_transaction_id": txn.id,
            "settle_transaction_id": None, "expires_at": now + timedelta(seconds=ttl_seconds), "created_at": now,
            "settled_at": None,
        })
    return await get_hold(session, app_id, hold_id)


async def _settle(session: AsyncSession, clock: Clock, app_id: str, hold_id: str, *, commit: bool,
                  reason: str | None, actor: str | None) -> HoldOut:
    now = clock.now()
    status = "committed" if commit else "released"
    async with session.begin_nested():
        won = await repo.settle_hold(session, app_id, hold_id, status=status, reason=reason, now=now,
                                     unexpired_at=now if commit else None)
        hold = await repo.get_hold(session, app_id, hold_id)
        if hold is None:
            raise NotFound(f"hold {hold_id} not found", code="hold_not_found")
        if not won:
            if hold.status == "active":
                raise Conflict(f"hold {hold_id} expired at {hold.expires_at.isoformat()}; it is being released",
                               code="hold_expired", extra={"hold_status": hold.status})
            raise Conflict(f"hold {hold_id} is already {hold.status}", code="hold_not_active",
                           extra={"hold_status": hold.status})
        to = AccountRef.system(SINK, hold.currency) if commit else AccountRef.player(hold.player_id, hold.currency)
        txn = await _post(
            session, clock, app_id=app_id, idempotency_key=f"{hold_id}:{status}",
            kind="hold_commit" if commit else "hold_release", source="hold",
            entries=[(AccountRef.system(HOLDS, hold.currency), -hold.amount), (to, hold.amount)],
            reference={**(hold.reference or {}), "hold_id": hold_id}, description=None, actor=actor,
        )
        await repo.set_settle_transaction(session, hold_id, txn.id)
    return await get_hold(session, app_id, hold_id)


async def commit_hold(session: AsyncSession, clock: Clock, *, app_id: str, hold_id: str,
                      actor: str | None = None) -> HoldOut:
    """Phase two, success: the held units go to the sink. Exactly once; an expired hold cannot commit."""
    return await _settle(session, clock, app_id, hold_id, commit=True, reason=None, actor=actor)


async def release_hold(session: AsyncSession, clock: Clock, *, app_id: str, hold_id: str,
                       actor: str | None = None, reason: str = "requested") -> HoldOut:
    """Phase two, abandoned: the held units go back to the player. Exactly once."""
    return await _settle(session, clock, app_id, hold_id, commit=False, reason=reason, actor=actor)


async def release_expired_holds(session: AsyncSession, clock: Clock, limit: int = 500) -> int:
    """Give back every hold whose time ran out (a scheduled job); returns how many were released."""
    released = 0
    for app_id, hold_id in await repo.expired_holds(session, clock.now(), limit):
        try:
            await release_hold(session, clock, app_id=app_id, hold_id=hold_id, reason="expired")
        except Conflict:  # settled meanwhile by a commit or release that won the race
            continue
        released += 1
    return released


# Wallets --------------------------------------------------------------------------------------


def hold_sub(name: str) -> str:
    """The sub-account that keeps money set aside for ``name`` (e.g. a campaign's id)."""
    return f"hold:{name}"


def _wallet(owner_kind: WalletOwnerKind, owner_id: str, currency: str, sub: str = "") -> AccountRef:
    if owner_kind not in WALLET_KINDS:
        raise Unprocessable(f"{owner_kind!r} does not own a wallet", code="invalid_account")
    return AccountRef.wallet(owner_kind, owner_id, currency, sub)


async def _fiat(session: AsyncSession, clock: Clock, app_id: str, currency: str) -> None:
    if not isinstance(currency, str) or not _FIAT.match(currency):
        raise Unprocessable(f"{currency!r} is not a fiat currency (three capitals, e.g. USD)", code="invalid_currency")
    await ensure_currency(session, clock, app_id, currency)


async def deposit(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind, owner_id: str,
                  currency: str, amount: int, idempotency_key: str, reference: dict[str, Any] | None = None,
                  description: str | None = None, actor: str | None = None) -> TransactionOut:
    """Money that came in from outside (a trusted caller says so): ``external`` -> the owner's available."""
    _check_amount(amount)
    await _fiat(session, clock, app_id, currency)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="deposit",
                       source="deposit", entries=[(AccountRef.system(EXTERNAL, currency), -amount),
                                                  (_wallet(owner_kind, owner_id, currency), amount)],
                       reference=reference, description=description, actor=actor)


async def hold_funds(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind, owner_id: str,
                     currency: str, amount: int, hold: str, idempotency_key: str,
                     reference: dict[str, Any] | None = None, actor: str | None = None) -> TransactionOut:
    """Set ``amount`` of the owner's available money aside under ``hold``; ``409 insufficient_funds`` if short."""
    _check_amount(amount)
    await _fiat(session, clock, app_id, currency)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="wallet_hold",
                       source="wallet", entries=[(_wallet(owner_kind, owner_id, currency), -amount),
                                                 (_wallet(owner_kind, owner_id, currency, hold_sub(hold)), amount)],
                       reference=reference, description=None, actor=actor)


async def release_held(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind,
                       owner_id: str, currency: str, hold: str, idempotency_key: str,
                       reference: dict[str, Any] | None = None, actor: str | None = None) -> TransactionOut | None:
    """Give back whatever is left under ``hold`` to the owner's available money (None when nothing is).

    The hold's account is locked first, so the amount read is the amount moved even while
    payments from the hold race this release; they then find it empty.
    """
    held = _wallet(owner_kind, owner_id, currency, hold_sub(hold))
    available = _wallet(owner_kind, owner_id, currency)
    await lock_accounts(session, clock, app_id=app_id, accounts=[held, available])
    replay = await repo.transaction_by_key(session, app_id, idempotency_key)
    if replay is not None:
        return await _transaction_out(session, replay.id, replay, replayed=True)
    amount = await repo.account_balance(session, app_id, held)
    if amount <= 0:
        return None
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="wallet_release",
                       source="wallet", entries=[(held, -amount), (available, amount)], reference=reference,
                       description=None, actor=actor)


async def wallet_balance(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind,
                         owner_id: str, currency: str, sub: str = "", lock: bool = False) -> int:
    """One wallet account's balance; with ``lock`` its row stays locked until the caller's transaction ends."""
    ref = _wallet(owner_kind, owner_id, currency, sub)
    _check_ref(ref)
    if lock:
        await lock_accounts(session, clock, app_id=app_id, accounts=[ref])
    return await repo.account_balance(session, app_id, ref)


async def pay_from_hold(session: AsyncSession, clock: Clock, *, app_id: str, payer_kind: WalletOwnerKind,
                        payer_id: str, hold: str, currency: str, payees: Sequence[tuple[WalletOwnerKind, str, int]],
                        fee: int, idempotency_key: str, reference: dict[str, Any] | None = None,
                        description: str | None = None) -> TransactionOut:
    """Pay out of a hold in one transaction: each payee's amount to their pending earnings, ``fee`` to the
    platform's revenue. The hold cannot go below zero (``409 insufficient_funds``)."""
    if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
        raise Unprocessable("the fee is a non-negative integer", code="invalid_amount")
    entries: list[tuple[AccountRef, int]] = []
    for kind, owner, amount in payees:
        if amount:
            entries.append((_wallet(kind, owner, currency, PENDING), _check_amount(amount)))
    if fee:
        entries.append((_wallet("platform", PLATFORM_REVENUE, currency), fee))
    gross = sum(amount for _, amount in entries)
    entries.insert(0, (_wallet(payer_kind, payer_id, currency, hold_sub(hold)), -_check_amount(gross)))
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="earning",
                       source="campaign", entries=entries, reference=reference, description=description, actor=None)


async def release_pending(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind,
                          owner_id: str, currency: str, amount: int, idempotency_key: str,
                          reference: dict[str, Any] | None = None) -> TransactionOut:
    """Pending earnings become available (withdrawable): pending -> available."""
    _check_amount(amount)
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="earning_release",
                       source="campaign", entries=[(_wallet(owner_kind, owner_id, currency, PENDING), -amount),
                                                   (_wallet(owner_kind, owner_id, currency), amount)],
                       reference=reference, description=None, actor=None)


async def wallet_of(session: AsyncSession, app_id: str, owner_kind: WalletOwnerKind, owner_id: str) -> WalletOut:
    """An owner's money per currency: available, held (every hold together) and pending."""
    exponents = {c.code: c.exponent for c in await repo.list_currencies(session, app_id)}
    totals: dict[str, dict[str, int]] = {}
    for account in await repo.owner_accounts(session, app_id, owner_kind, owner_id, all_subs=True):
        bucket = "available" if account.sub == "" else "pending" if account.sub == PENDING else "held"
        sums = totals.setdefault(account.currency, {"available": 0, "held": 0, "pending": 0})
        sums[bucket] += account.balance
    return WalletOut(owner_kind=owner_kind, owner_id=owner_id, balances=[
        WalletBalance(currency=code, exponent=exponents.get(code, 0), **sums) for code, sums in sorted(totals.items())
    ])


MAX_STATEMENT_LINES = 10_000
MAX_RATE_DIGITS = 18


async def statement(session: AsyncSession, *, app_id: str, owner_kind: WalletOwnerKind, owner_id: str,
                    currency: str, start: datetime, end: datetime, sub: str = "") -> StatementOut:
    """One wallet account over ``[start, end)``: the opening balance, every movement, the closing balance.

    A movement belongs to the period its transaction was made in; the opening balance is what every
    earlier movement adds up to, so ``opening + movements = closing`` to the minor unit, and a period
    that reaches the present closes on the account's balance.
    """
    ref = _wallet(owner_kind, owner_id, currency, sub)
    _check_ref(ref)
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("a statement's period needs times with a time zone (e.g. 2026-11-01T00:00:00Z)",
                            code="invalid_period")
    try:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError as exc:
        raise Unprocessable("a statement's period must lie within the years 1 to 9999 in UTC",
                            code="invalid_period") from exc
    if end <= start:
        raise Unprocessable("a statement's period must end after it starts", code="invalid_period")
    known = await repo.get_currency(session, app_id, currency)
    if known is None:
        raise Unprocessable(f"currency {currency!r} is not defined for this app", code="unknown_currency",
                            extra={"currency": currency})
    account = await repo.account_of(session, app_id, ref)
    opening, rows = 0, []
    if account is not None:
        opening = await repo.sum_before(session, account.id, start)
        rows = list(await repo.postings_between(session, account.id, start, end, MAX_STATEMENT_LINES + 1))
    if len(rows) > MAX_STATEMENT_LINES:
        raise Unprocessable(f"the period holds more than {MAX_STATEMENT_LINES:,} movements; ask for a shorter one",
                            code="statement_too_large")
    running = opening
    lines = []
    for row in rows:
        running += row.amount
        lines.append(StatementLine(transaction_id=row.transaction_id, created_at=row.created_at, kind=row.kind,
                                   source=row.source, description=row.description, reference=row.reference,
                                   amount=row.amount, balance=running))
    return StatementOut(owner_kind=owner_kind, owner_id=owner_id, currency=currency, exponent=known.exponent,
                        sub=sub, start=start, end=end, opening_balance=opening,
                        total_in=sum(r.amount for r in rows if r.amount > 0),
                        total_out=-sum(r.amount for r in rows if r.amount < 0), closing_balance=running,
                        movements=lines)


async def movements(session: AsyncSession, *, app_id: str, account: AccountRef, start: datetime,
                    end: datetime) -> list[StatementLine]:
    """Every movement of any one account (a system account too: ``external``, ``exchange``) over
    ``[start, end)`` (UTC), oldest first, with its running balance; at most 10,000 (else 422)."""
    _check_ref(account)
    found = await repo.account_of(session, app_id, account)
    if found is None:
        return []
    running = await repo.sum_before(session, found.id, start)
    rows = list(await repo.postings_between(session, found.id, start, end, MAX_STATEMENT_LINES + 1))
    if len(rows) > MAX_STATEMENT_LINES:
        raise Unprocessable(f"the period holds more than {MAX_STATEMENT_LINES:,} movements; ask for a shorter one",
                            code="statement_too_large")
    lines = []
    for row in rows:
        running += row.amount
        lines.append(StatementLine(transaction_id=row.transaction_id, created_at=row.created_at, kind=row.kind,
                                   source=row.source, description=row.description, reference=row.reference,
                                   amount=row.amount, balance=running))
    return lines


def parse_rate(rate: str) -> Decimal:
    """A positive exchange rate given as a decimal string ("0.9215"); floats never carry money here."""
    try:
        value = Decimal(rate)
    except (ArithmeticError, ValueError, TypeError):
        value = Decimal(0)
    digits = value.as_tuple()
    if (not value.is_finite() or value <= 0 or len(digits.digits) > MAX_RATE_DIGITS
            or not isinstance(digits.exponent, int) or digits.exponent < -12):
        raise Unprocessable(f"{rate!r} is not a rate: a positive decimal string of at most {MAX_RATE_DIGITS} digits "
                            "and 12 decimal places, e.g. \"0.9215\"", code="invalid_rate")
    return value


async def convert(session: AsyncSession, clock: Clock, *, app_id: str, owner_kind: WalletOwnerKind, owner_id: str,
                  source: str, target: str, amount: int, rate: str, idempotency_key: str,
                  reference: dict[str, Any] | None = None, actor: str | None = None) -> TransactionOut:
    """Exchange ``amount`` of the owner's available ``source`` money into ``target`` at ``rate``.

    One transaction through the ``exchange`` account: the owner pays ``amount`` in, the exchange pays
    ``floor(amount × rate)`` out (in the target's minor units; the fraction stays with the platform).
    The rate is recorded on the transaction. ``409 insufficient_funds`` if the owner lacks the money.
    """
    _check_amount(amount)
    if source == target:
        raise Unprocessable("a conversion needs two different currencies", code="same_currency")
    await _fiat(session, clock, app_id, source)
    await _fiat(session, clock, app_id, target)
    value = parse_rate(rate)
    exponents = {c.code: c.exponent for c in await repo.list_currencies(session, app_id)}
    scaled = Decimal(amount) * value * (Decimal(10) ** (exponents[target] - exponents[source]))
    converted = int(scaled.to_integral_value(rounding=ROUND_DOWN))
    if converted <= 0:
        raise Unprocessable(f"{amount} {source} (minor units) buys nothing at {rate}", code="amount_too_small")
    _check_amount(converted)
    recorded = {**(reference or {}), "rate": str(value), "from": source, "to": target, "paid": amount,
                "received": converted}
    return await _post(session, clock, app_id=app_id, idempotency_key=idempotency_key, kind="conversion",
                       source="exchange", entries=[
                           (_wallet(owner_kind, owner_id, source), -amount),
                           (AccountRef.system(EXCHANGE, source), amount),
                           (AccountRef.system(EXCHANGE, target), -converted),
                           (_wallet(owner_kind, owner_id, target), converted)],
                       reference=recorded, description=None, actor=actor)


async def hold_spending(session: AsyncSession, *, app_id: str, owner_kind: WalletOwnerKind, start: datetime,
                        end: datetime, owner_id: str | None = None) -> list[HoldSpending]:
    """What the owners' holds paid out (``pay_from_hold``: campaign earnings) in ``[start, end)``, per
    owner, hold and currency, with the platform's fee in it. A payment belongs to the period its
    transaction was made in, as on statements."""
    rows = await repo.hold_spending(session, app_id, owner_kind, owner_id, start.astimezone(UTC),
                                    end.astimezone(UTC), "earning", PLATFORM_REVENUE)
    return [HoldSpending(owner_id=owner, hold=sub.removeprefix("hold:"), currency=currency, gross=int(gross),
                         fee=int(fee), transactions=int(n)) for owner, sub, currency, gross, fee, n in rows]


# Verification ---------------------------------------------------------------------------------


async def verify(session: AsyncSession, app_id: str | None = None) -> list[Violation]:
    """Check every ledger invariant; an empty list means the books are sound."""
    found: list[Violation] = []
    for app, txn, currency, total, n in await repo.unbalanced_transactions(session, app_id):
        found.append(Violation("transaction_balanced", app, txn,
                               f"{n} posting(s) in {currency or '-'} sum to {total}, not 0 (at least 2 needed)"))
    for app, posting, currency, acc_currency, amount in await repo.mismatched_postings(session, app_id):
        found.append(Violation("posting_consistent", app, f"posting {posting}",
                               f"posting in {currency} of {amount} on a {acc_currency} account, or its "
                               "app or balance change disagree"))
    for row in await repo.broken_chains(session, app_id):
        expected = "seq 1 from 0" if row.prev_seq is None else f"seq {row.prev_seq + 1} from {row.prev_after}"
        found.append(Violation("account_chain", row.app_id, f"account {row.account_id}",
                               f"posting {row.posting_id} is seq {row.seq} from {row.before}; expected {expected}"))
    for (app, acc_id, kind, owner, currency, balance, total, seq, n, max_seq, credited, sum_credited, debited,
         sum_debited) in await repo.account_mismatches(session, app_id, _REVERSING_KINDS):
        found.append(Violation("account_totals", app, f"account {acc_id} ({kind}:{owner} {currency})",
                               f"balance {balance} vs postings {total}; seq {seq} vs {n} postings (max {max_seq}); "
                               f"credited {credited} vs {sum_credited}; debited {debited} vs {sum_debited}"))
    for app, acc_id, kind, owner, currency, balance in await repo.negative_balances(session, app_id):
        found.append(Violation("non_negative", app, f"account {acc_id} ({kind}:{owner} {currency})",
                               f"balance is {balance}, or went below zero in a posting"))
    for app, currency, held, balance in await repo.active_holds_by_account(session, app_id):
        found.append(Violation("holds_covered", app, f"holds {currency}",
                               f"active holds total {held} but the holds account has {balance}"))
    return found


async def ledger_totals(session: AsyncSession, app_id: str | None = None) -> list[CurrencyTotals]:
    return [CurrencyTotals(app_id=app, currency=currency, accounts=int(accounts), postings=int(postings),
                           player_balances=int(player_total), issued=-int(issuance), held=int(held), sunk=int(sunk))
            for app, currency, accounts, postings, player_total, issuance, held, sunk
            in await repo.totals(session, app_id)]
