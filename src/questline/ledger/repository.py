"""Every ledger query. Balances change only through ``apply_posting`` (a conditional UPDATE)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import Bulk, PerDialect, among, insert_ignore, many, rows_of, run
from questline.ledger.models import Currency, Hold, LedgerAccount, LedgerTransaction, Posting
from questline.ledger.schemas import AccountRef

# Currencies -----------------------------------------------------------------------------------


async def get_currency(session: AsyncSession, app_id: str, code: str) -> Currency | None:
    return (await session.execute(
        sa.select(Currency).where(Currency.app_id == app_id, Currency.code == code)
    )).scalar_one_or_none()


# Built once per dialect: the worker's rewards run it per batch.
_KNOWN = PerDialect(lambda dialect: sa.select(Currency.code).where(
    Currency.app_id == sa.bindparam("app"), among(Currency.code, "codes", dialect)))


async def known_currencies(session: AsyncSession, app_id: str, codes: set[str]) -> set[str]:
    return {code for code, in await rows_of(session, _KNOWN, {"app": app_id, "codes": sorted(codes)})}


async def list_currencies(session: AsyncSession, app_id: str) -> Sequence[Currency]:
    return (await session.execute(
        sa.select(Currency).where(Currency.app_id == app_id).order_by(Currency.code)
    )).scalars().all()


async def count_currencies(session: AsyncSession, app_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Currency).where(Currency.app_id == app_id)
    )).scalar_one())


async def insert_currency(session: AsyncSession, app_id: str, code: str, name: str, now: datetime, *,
                          kind: str = "points", exponent: int = 0) -> bool:
    """Insert unless present; True when this call created it."""
    table = Currency.__table__
    created = await session.execute(
        insert_ignore(session, table).values(app_id=app_id, code=code, name=name, kind=kind, exponent=exponent,
                                             created_at=now, updated_at=now)
        .returning(table.c.pk)
    )
    return created.scalar_one_or_none() is not None


async def rename_currency(session: AsyncSession, app_id: str, code: str, name: str, now: datetime) -> None:
    await session.execute(
        sa.update(Currency).where(Currency.app_id == app_id, Currency.code == code, Currency.name != name)
        .values(name=name, updated_at=now)
    )


# Accounts -------------------------------------------------------------------------------------


# PostgreSQL: the refs travel as one JSON parameter, so the text is the same for any number of
# them (a tuple IN renders four parameters per ref, each processed in Python).
_ACCOUNT_IDS_PG = PerDialect(lambda _: sa.text("""
    SELECT a.id, a.owner_kind, a.owner_id, a.currency, a.sub
      FROM ledger_accounts AS a
      JOIN json_to_recordset(CAST(:refs AS json)) AS r(k text, o text, c text, s text)
        ON a.owner_kind = r.k AND a.owner_id = r.o AND a.currency = r.c AND a.sub = r.s
     WHERE a.app_id = :app"""))


async def account_ids(session: AsyncSession, app_id: str, refs: Sequence[AccountRef]) -> dict[AccountRef, int]:
    if not refs:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        refs_json = orjson.dumps([{"k": r.owner_kind, "o": r.owner_id, "c": r.currency, "s": r.sub} for r in refs])
        found = await rows_of(session, _ACCOUNT_IDS_PG, {"app": app_id, "refs": refs_json.decode()})
        return {AccountRef(kind, owner, currency, sub): int(id_)
                for id_, kind, owner, currency, sub in found}
    wanted = sa.tuple_(LedgerAccount.owner_kind, LedgerAccount.owner_id, LedgerAccount.currency,
                       LedgerAccount.sub).in_([(r.owner_kind, r.owner_id, r.currency, r.sub) for r in refs])
    rows = await session.execute(
        sa.select(LedgerAccount.id, LedgerAccount.owner_kind, LedgerAccount.owner_id, LedgerAccount.currency,
                  LedgerAccount.sub)
        .where(LedgerAccount.app_id == app_id, wanted)
    )
    return {AccountRef(kind, owner, currency, sub): id_  # type: ignore[arg-type]
            for id_, kind, owner, currency, sub in rows}


async def insert_accounts(session: AsyncSession, app_id: str, rows: Sequence[tuple[AccountRef, bool]],
                          now: datetime) -> None:
    """Create missing accounts (ref, allow_negative); rows go in key order so concurrent inserts queue alike."""
    values = [{"app_id": app_id, "owner_kind": ref.owner_kind, "owner_id": ref.owner_id, "currency": ref.currency,
               "sub": ref.sub, "allow_negative": allow_negative, "balance": 0, "seq": 0, "lifetime_credited": 0,
               "lifetime_debited": 0, "created_at": now}
              for ref, allow_negative in sorted(dict(rows).items())]
    if values:
        # One multi-row statement per page (the rows stay in key order), not one per account: a
        # worker batch meeting new players creates hundreds at once.
        await session.execute(many(insert_ignore(session, LedgerAccount.__table__)), values)


async def lock_accounts(session: AsyncSession, account_ids: Sequence[int]) -> None:
    """Take these accounts' row locks in id order (PostgreSQL; SQLite's write lock already covers it)."""
    if account_ids:
        await run(session, _LOCK, {"ids": sorted(set(account_ids))})


_LOCK = PerDialect(lambda dialect: sa.select(LedgerAccount.id).where(among(LedgerAccount.id, "ids", dialect))
                   .order_by(LedgerAccount.id).with_for_update())


async def apply_posting(session: AsyncSession, account_id: int, amount: int, credited: int,
                        debited: int) -> tuple[int, int] | None:
    """Move one account's balance by ``amount`` unless that would take a guarded account below zero.

    One statement, so concurrent postings cannot both pass the check on a stale balance.
    Returns (balance_after, seq) or None when refused.
    """
    acc = LedgerAccount
    result = await session.execute(
        sa.update(acc)
        .where(acc.id == account_id, sa.or_(acc.allow_negative, acc.balance + amount >= 0))
        .values(balance=acc.balance + amount, seq=acc.seq + 1,
                lifetime_credited=acc.lifetime_credited + credited,
                lifetime_debited=acc.lifetime_debited + debited)
        .returning(acc.balance, acc.seq)
    )
    row = result.one_or_none()
    return None if row is None else (int(row[0]), int(row[1]))


_APPLY_DELTAS = PerDialect({
    # One statement for many accounts; the deltas travel as one JSON parameter, so the statement
    # text is the same for every batch (prepared once).
    "postgresql": sa.text("""
        UPDATE ledger_accounts AS a
           SET balance = a.balance + d.delta, seq = a.seq + d.n,
               lifetime_credited = a.lifetime_credited + d.credited,
               lifetime_debited = a.lifetime_debited + d.debited
          FROM jsonb_to_recordset(CAST(:deltas AS jsonb))
               AS d(id bigint, delta bigint, n bigint, credited bigint, debited bigint)
         WHERE a.id = d.id AND (a.allow_negative OR a.balance + d.delta >= 0)
     RETURNING a.id, a.balance, a.seq"""),
    "sqlite": sa.text("""
        UPDATE ledger_accounts
           SET balance = balance + d.delta, seq = seq + d.n,
               lifetime_credited = lifetime_credited + d.credited,
               lifetime_debited = lifetime_debited + d.debited
          FROM (SELECT value ->> 'id' AS id, value ->> 'delta' AS delta, value ->> 'n' AS n,
                       value ->> 'credited' AS credited, value ->> 'debited' AS debited
                  FROM json_each(:deltas)) AS d
         WHERE ledger_accounts.id = d.id AND (allow_negative OR balance + d.delta >= 0)
     RETURNING ledger_accounts.id, ledger_accounts.balance, ledger_accounts.seq"""),
}.__getitem__)


async def apply_deltas(session: AsyncSession, deltas: Sequence[dict[str, int]]) -> dict[int, tuple[int, int]]:
    """Move many accounts at once: ``{id, delta, n, credited, debited}`` each (``n`` postings).

    Like ``apply_posting``, an account that would go below zero (and may not) is left as it is;
    it is missing from the answer: account id -> (balance after, seq after).
    """
    if not deltas:
        return {}
    rows = await rows_of(session, _APPLY_DELTAS, {"deltas": orjson.dumps(list(deltas)).decode()})
    return {int(id_): (int(balance), int(seq)) for id_, balance, seq in rows}


async def insert_transactions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert transaction rows, skipping keys already taken; returns the idempotency keys inserted."""
    if not rows:
        return set()
    table = LedgerTransaction.__table__
    inserted = await session.execute(insert_ignore(session, table).returning(table.c.idempotency_key), list(rows))
    return set(inserted.scalars())


async def account_balance(session: AsyncSession, app_id: str, ref: AccountRef) -> int:
    """The balance of one account (0 when it does not exist yet)."""
    found = (await session.execute(
        sa.select(LedgerAccount.balance).where(
            LedgerAccount.app_id == app_id, LedgerAccount.owner_kind == ref.owner_kind,
            LedgerAccount.owner_id == ref.owner_id, LedgerAccount.currency == ref.currency,
            LedgerAccount.sub == ref.sub)
    )).scalar_one_or_none()
    return int(found or 0)


async def balance_of(session: AsyncSession, account_id: int) -> int:
    return int((await session.execute(
        sa.select(LedgerAccount.balance).where(LedgerAccount.id == account_id)
    )).scalar_one())


async def owner_accounts(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str,
                         currency: str | None = None, *, all_subs: bool = False) -> Sequence[LedgerAccount]:
    """The owner's accounts (their main one per currency; every sub-account too with ``all_subs``)."""
    stmt = sa.select(LedgerAccount).where(
        LedgerAccount.app_id == app_id, LedgerAccount.owner_kind == owner_kind, LedgerAccount.owner_id == owner_id,
    ).order_by(LedgerAccount.currency, LedgerAccount.sub).execution_options(populate_existing=True)
    if not all_subs:
        stmt = stmt.where(LedgerAccount.sub == "")
    if currency is not None:
        stmt = stmt.where(LedgerAccount.currency == currency)
    return (await session.execute(stmt)).scalars().all()


# Transactions and postings --------------------------------------------------------------------


async def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the transaction row unless its idempotency key is taken; True when inserted.

    ``ON CONFLICT DO NOTHING`` never raises, so the caller's transaction stays usable on
    PostgreSQL, and a concurrent duplicate waits for the first insert to commit or roll back.
    """
    table = LedgerTransaction.__table__
    inserted = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return inserted.scalar_one_or_none() is not None


async def transaction_by_key(session: AsyncSession, app_id: str, key: str) -> LedgerTransaction | None:
    return (await session.execute(
        sa.select(LedgerTransaction).where(LedgerTransaction.app_id == app_id,
                                           LedgerTransaction.idempotency_key == key)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def insert_postings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _POSTINGS.write(session, list(rows))


_POSTINGS = Bulk(Posting.__table__)  # PostgreSQL: one JSON parameter, one statement text for any number of rows


async def postings_of(session: AsyncSession, transaction_id: str) -> Sequence[Any]:
    return (await session.execute(
        sa.select(LedgerAccount.owner_kind, LedgerAccount.owner_id, Posting.currency, Posting.amount,
                  Posting.balance_before, Posting.balance_after, Posting.account_seq, LedgerAccount.sub)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(Posting.transaction_id == transaction_id)
        .order_by(Posting.id)
    )).all()


def _player_postings(app_id: str, player_id: str, currency: str | None) -> Any:
    stmt = (
        sa.select(Posting.id, Posting.transaction_id, Posting.currency, Posting.amount, Posting.balance_before,
                  Posting.balance_after, LedgerTransaction.kind, LedgerTransaction.source,
                  LedgerTransaction.description, LedgerTransaction.reference, LedgerTransaction.actor,
                  LedgerTransaction.created_at)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(LedgerAccount.app_id == app_id, LedgerAccount.owner_kind == "player",
               LedgerAccount.owner_id == player_id)
    )
    if currency is not None:
        stmt = stmt.where(LedgerAccount.currency == currency)
    return stmt


async def player_history(session: AsyncSession, app_id: str, player_id: str, *, currency: str | None,
                         before_id: int | None, limit: int) -> Sequence[Any]:
    """Newest first, keyed by posting id (increasing with time within each account)."""
    stmt = _player_postings(app_id, player_id, currency).order_by(Posting.id.desc()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(Posting.id < before_id)
    return (await session.execute(stmt)).all()


async def count_player_history(session: AsyncSession, app_id: str, player_id: str, currency: str | None) -> int:
    inner = _player_postings(app_id, player_id, currency).subquery()
    return int((await session.execute(sa.select(sa.func.count()).select_from(inner))).scalar_one())


# Holds ----------------------------------------------------------------------------------------


async def insert_hold(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Hold).values(**values))


async def get_hold(session: AsyncSession, app_id: str, hold_id: str) -> Hold | None:
    return (await session.execute(
        sa.select(Hold).where(Hold.app_id == app_id, Hold.id == hold_id).execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def hold_by_transaction(session: AsyncSession, app_id: str, transaction_id: str) -> Hold | None:
    return (await session.execute(
        sa.select(Hold).where(Hold.app_id == app_id, Hold.hold_transaction_id == transaction_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def settle_hold(session: AsyncSession, app_id: str, hold_id: str, *, status: str, reason: str | None,
                      now: datetime, unexpired_at: datetime | None) -> bool:
    """Move an active hold to its final status; True for exactly one caller, however many race."""
    stmt = (
        sa.update(Hold)
        .where(Hold.app_id == app_id, Hold.id == hold_id, Hold.status == "active")
        .values(status=status, release_reason=reason, settled_at=now)
        .returning(Hold.id)
    )
    if unexpired_at is not None:
        stmt = stmt.where(Hold.expires_at > unexpired_at)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def set_settle_transaction(session: AsyncSession, hold_id: str, transaction_id: str) -> None:
    await session.execute(sa.update(Hold).where(Hold.id == hold_id).values(settle_transaction_id=transaction_id))


async def expired_holds(session: AsyncSession, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
    rows = await session.execute(
        sa.select(Hold.app_id, Hold.id).where(Hold.status == "active", Hold.expires_at <= now)
        .order_by(Hold.expires_at, Hold.id).limit(limit)
    )
    return [(app_id, hold_id) for app_id, hold_id in rows]


# Verification ---------------------------------------------------------------------------------


def _scoped(stmt: Any, column: Any, app_id: str | None) -> Any:
    return stmt if app_id is None else stmt.where(column == app_id)


async def unbalanced_transactions(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """(app_id, transaction_id, currency, sum, postings) whose postings do not sum to zero."""
    stmt = (
        sa.select(LedgerTransaction.app_id, LedgerTransaction.id, Posting.currency,
                  sa.func.coalesce(sa.func.sum(Posting.amount), 0), sa.func.count(Posting.id))
        .select_from(LedgerTransaction)
        .outerjoin(Posting, Posting.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.app_id, LedgerTransaction.id, Posting.currency)
        .having(sa.or_(sa.func.coalesce(sa.func.sum(Posting.amount), 0) != 0, sa.func.count(Posting.id) < 2))
        .order_by(LedgerTransaction.id)
    )
    return (await session.execute(_scoped(stmt, LedgerTransaction.app_id, app_id))).all()


async def mismatched_postings(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """Postings whose currency or app differs from their account's, or whose amount is zero."""
    stmt = (
        sa.select(LedgerAccount.app_id, Posting.id, Posting.currency, LedgerAccount.currency, Posting.amount)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(sa.or_(Posting.currency != LedgerAccount.currency, Posting.app_id != LedgerAccount.app_id,
                      LedgerTransaction.app_id != LedgerAccount.app_id, Posting.amount == 0,
                      Posting.balance_after != Posting.balance_before + Posting.amount))
        .order_by(Posting.id)
    )
    return (await session.execute(_scoped(stmt, LedgerAccount.app_id, app_id))).all()


async def broken_chains(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """Postings that do not continue their account's previous posting (seq + 1, before == previous after)."""
    prev_after = sa.func.lag(Posting.balance_after).over(partition_by=Posting.account_id,
                                                        order_by=Posting.account_seq)
    prev_seq = sa.func.lag(Posting.account_seq).over(partition_by=Posting.account_id, order_by=Posting.account_seq)
    chain = _scoped(
        sa.select(Posting.app_id.label("app_id"), Posting.id.label("posting_id"),
                  Posting.account_id.label("account_id"), Posting.account_seq.label("seq"),
                  Posting.balance_before.label("before"), prev_seq.label("prev_seq"),
                  prev_after.label("prev_after")),
        Posting.app_id, app_id,
    ).subquery()
    stmt = sa.select(chain).where(sa.or_(
        sa.and_(chain.c.prev_seq.is_(None), sa.or_(chain.c.seq != 1, chain.c.before != 0)),
        sa.and_(chain.c.prev_seq.is_not(None),
                sa.or_(chain.c.seq != chain.c.prev_seq + 1, chain.c.before != chain.c.prev_after)),
    )).order_by(chain.c.account_id, chain.c.seq)
    return (await session.execute(stmt)).all()


async def account_mismatches(session: AsyncSession, app_id: str | None,
                             reversing_kinds: Sequence[str]) -> Sequence[Any]:
    """Accounts whose stored balance, sequence or lifetime totals differ from their postings."""
    reversal = LedgerTransaction.kind.in_(list(reversing_kinds))
    credited = sa.case((sa.and_(Posting.amount > 0, sa.not_(reversal)), Posting.amount),
                       (sa.and_(Posting.amount < 0, reversal), Posting.amount), else_=0)
    debited = sa.case((sa.and_(Posting.amount < 0, sa.not_(reversal)), -Posting.amount),
                      (sa.and_(Posting.amount > 0, reversal), -Posting.amount), else_=0)
    sums = (
        sa.select(Posting.account_id.label("account_id"), sa.func.sum(Posting.amount).label("total"),
                  sa.func.count(Posting.id).label("n"), sa.func.max(Posting.account_seq).label("max_seq"),
                  sa.func.sum(credited).label("credited"), sa.func.sum(debited).label("debited"))
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .group_by(Posting.account_id)
    ).subquery()
    total = sa.func.coalesce(sums.c.total, 0)
    n = sa.func.coalesce(sums.c.n, 0)
    stmt = (
        sa.select(LedgerAccount.app_id, LedgerAccount.id, LedgerAccount.owner_kind, LedgerAccount.owner_id,
                  LedgerAccount.currency, LedgerAccount.balance, total, LedgerAccount.seq, n,
                  sa.func.coalesce(sums.c.max_seq, 0), LedgerAccount.lifetime_credited,
                  sa.func.coalesce(sums.c.credited, 0), LedgerAccount.lifetime_debited,
                  sa.func.coalesce(sums.c.debited, 0))
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(sa.or_(LedgerAccount.balance != total, LedgerAccount.seq != n,
                      LedgerAccount.seq != sa.func.coalesce(sums.c.max_seq, 0),
                      LedgerAccount.lifetime_credited != sa.func.coalesce(sums.c.credited, 0),
                      LedgerAccount.lifetime_debited != sa.func.coalesce(sums.c.debited, 0)))
        .order_by(LedgerAccount.id)
    )
    return (await session.execute(_scoped(stmt, LedgerAccount.app_id, app_id))).all()


async def negative_balances(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """Guarded accounts (every player's) that are, or ever were, below zero."""
    ever_negative = (
        sa.select(Posting.account_id).where(Posting.balance_after < 0).distinct()
    ).scalar_subquery()
    stmt = (
        sa.select(LedgerAccount.app_id, LedgerAccount.id, LedgerAccount.owner_kind, LedgerAccount.owner_id,
                  LedgerAccount.currency, LedgerAccount.balance)
        .where(sa.or_(LedgerAccount.owner_kind == "player", sa.not_(LedgerAccount.allow_negative)),
               sa.or_(LedgerAccount.balance < 0, LedgerAccount.id.in_(ever_negative)))
        .order_by(LedgerAccount.id)
    )
    return (await session.execute(_scoped(stmt, LedgerAccount.app_id, app_id))).all()


async def active_holds_by_account(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """(app_id, currency, sum of active holds, holds account balance) where the two disagree."""
    active = (
        sa.select(Hold.app_id.label("app_id"), Hold.currency.label("currency"),
                  sa.func.sum(Hold.amount).label("held"))
        .where(Hold.status == "active").group_by(Hold.app_id, Hold.currency)
    ).subquery()
    held = sa.func.coalesce(active.c.held, 0)
    stmt = (
        sa.select(LedgerAccount.app_id, LedgerAccount.currency, held, LedgerAccount.balance)
        .outerjoin(active, sa.and_(active.c.app_id == LedgerAccount.app_id,
                                   active.c.currency == LedgerAccount.currency))
        .where(LedgerAccount.owner_kind == "system", LedgerAccount.owner_id == "holds",
               LedgerAccount.balance != held)
    )
    return (await session.execute(_scoped(stmt, LedgerAccount.app_id, app_id))).all()


async def totals(session: AsyncSession, app_id: str | None) -> Sequence[Any]:
    """Per app and currency: accounts, postings, and the balances of players and system accounts."""
    posting_counts = (
        sa.select(Posting.account_id.label("account_id"), sa.func.count(Posting.id).label("n"))
        .group_by(Posting.account_id)
    ).subquery()
    acc = LedgerAccount

    def balance_where(condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, acc.balance), else_=0)), 0)

    stmt = (
        sa.select(acc.app_id, acc.currency, sa.func.count(acc.id),
                  sa.func.coalesce(sa.func.sum(posting_counts.c.n), 0),
                  balance_where(acc.owner_kind == "player"),
                  balance_where(sa.and_(acc.owner_kind == "system", acc.owner_id == "issuance")),
                  balance_where(sa.and_(acc.owner_kind == "system", acc.owner_id == "holds")),
                  balance_where(sa.and_(acc.owner_kind == "system", acc.owner_id == "sink")))
        .outerjoin(posting_counts, posting_counts.c.account_id == acc.id)
        .group_by(acc.app_id, acc.currency)
        .order_by(acc.app_id, acc.currency)
    )
    return (await session.execute(_scoped(stmt, acc.app_id, app_id))).all()


# Statements -----------------------------------------------------------------------------------


async def account_of(session: AsyncSession, app_id: str, ref: AccountRef) -> LedgerAccount | None:
    return (await session.execute(
        sa.select(LedgerAccount).where(
            LedgerAccount.app_id == app_id, LedgerAccount.owner_kind == ref.owner_kind,
            LedgerAccount.owner_id == ref.owner_id, LedgerAccount.currency == ref.currency,
            LedgerAccount.sub == ref.sub)
    )).scalar_one_or_none()


async def sum_before(session: AsyncSession, account_id: int, start: datetime) -> int:
    """What an account's postings of transactions made before ``start`` add up to (its opening balance)."""
    return int((await session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Posting.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(Posting.account_id == account_id, LedgerTransaction.created_at < start)
    )).scalar_one())


async def postings_between(session: AsyncSession, account_id: int, start: datetime, end: datetime,
                           limit: int) -> Sequence[Any]:
    """An account's postings of transactions made in ``[start, end)``, oldest first (at most ``limit``)."""
    return (await session.execute(
        sa.select(Posting.transaction_id, Posting.amount, Posting.account_seq, LedgerTransaction.kind,
                  LedgerTransaction.source, LedgerTransaction.description, LedgerTransaction.reference,
                  LedgerTransaction.created_at)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(Posting.account_id == account_id, LedgerTransaction.created_at >= start,
               LedgerTransaction.created_at < end)
        .order_by(LedgerTransaction.created_at, Posting.account_seq).limit(limit)
    )).all()


async def hold_spending(session: AsyncSession, app_id: str, owner_kind: str, owner_id: str | None, start: datetime,
                        end: datetime, kind: str, revenue_owner: str) -> Sequence[Any]:
    """Per (owner, hold account): what ``kind`` transactions made in ``[start, end)`` took from it, and
    what those same transactions paid to the platform's revenue account."""
    hold = sa.orm.aliased(LedgerAccount)
    revenue = (
        sa.select(Posting.transaction_id.label("txn"), Posting.amount.label("amount"))
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(LedgerAccount.app_id == app_id, LedgerAccount.owner_kind == "platform",
               LedgerAccount.owner_id == revenue_owner, LedgerAccount.sub == "")
        .subquery()
    )
    stmt = (
        sa.select(hold.owner_id, hold.sub, hold.currency, sa.func.sum(-Posting.amount),
                  sa.func.coalesce(sa.func.sum(revenue.c.amount), 0), sa.func.count())
        .select_from(Posting)
        .join(hold, hold.id == Posting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .outerjoin(revenue, revenue.c.txn == Posting.transaction_id)
        .where(hold.app_id == app_id, hold.owner_kind == owner_kind, hold.sub.like("hold:%"),
               LedgerTransaction.app_id == app_id, LedgerTransaction.kind == kind,
               LedgerTransaction.created_at >= start, LedgerTransaction.created_at < end)
        .group_by(hold.owner_id, hold.sub, hold.currency)
        .order_by(hold.owner_id, hold.sub, hold.currency)
    )
    if owner_id is not None:
        stmt = stmt.where(hold.owner_id == owner_id)
    return (await session.execute(stmt)).all()
