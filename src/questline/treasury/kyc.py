"""Know your customer: identity documents, statuses, a risk score from rules, and the payout gate.

- **Documents** (passport, driver's licence, national ID) are PNG or JPEG images or PDF files,
  recognised by their content (never by the name or the declared type), at most 5 MiB each, sealed
  at rest with AES-GCM (the data key; bound to the document's row) and served only to reviewers (the
  app's admins, people: not the server key, not the subject). Their content is dropped
  ``retention_days`` after the decision.
- **Statuses**: ``not_started`` (documents being added) → ``submitted`` → ``in_review`` →
  ``verified`` (for ``validity_days``) or ``rejected`` with reasons (the subject may add documents and
  submit again) → ``expired`` when a verification runs out.
- **Risk score** (0 to 100) from rules, computed at submission: a high-risk country (40), a country
  other than the one the platform vouches for in the subject's audience (20), a name other than the
  holder of their bank account (20), under 18 (50), a third submission or more (15), withdrawals of the
  last 30 days above ``high_volume_above`` (25).
- **Verification providers**: ``VerificationProvider`` starts a check when a case is submitted; the one
  implementation is the manual review queue (``GET /v1/finance/kyc?status=submitted``).
- **The gate**: a withdrawal above the currency's ``kyc_required_above`` needs a verified, unexpired case.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import Conflict, NotFound, ProblemError, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger.schemas import WalletOwnerKind
from questline.sponsors import sealing
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller
from questline.treasury import repository as repo
from questline.treasury.models import KycCase, KycDocument
from questline.treasury.schemas import (
    KycCaseOut,
    KycDecisionIn,
    KycDocumentOut,
    KycOut,
    KycReport,
    KycRules,
    KycStatus,
    KycSubmitIn,
    TreasurySettingsBody,
)
from questline.treasury.service import authorize_owner

MAX_DOCUMENT_BYTES = 5 * 1_048_576
MAX_DOCUMENTS = 6
OPEN = ("not_started", "rejected", "expired")  # documents may be added and the case submitted


class VerificationProvider(Protocol):
    name: str

    async def start(self, case: KycCase) -> str:
        """Begin checking a submitted case; the status it is left in."""
        ...


class ManualReview:
    """Reviewers (the app's admins) check each case from the queue."""

    name = "manual"

    async def start(self, case: KycCase) -> str:
        return "submitted"


def recognise(content: bytes) -> str:
    """The document's type from its content: application/pdf, image/png or image/jpeg (else 415)."""
    if not content:
        raise Unprocessable("the file is empty", code="empty_file")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ProblemError(f"a document may be at most {MAX_DOCUMENT_BYTES} bytes", status=413,
                           code="payload_too_large", title="Payload too large")
    if content.startswith(b"%PDF-"):
        if b"%%EOF" not in content[-1024:]:
            raise Unprocessable("the PDF is truncated (no %%EOF at its end)", code="invalid_document")
        return "application/pdf"
    if content.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        from PIL import Image, UnidentifiedImageError  # on first use: most servers never see a document

        try:
            with Image.open(io.BytesIO(content)) as image:
                image.verify()
                kind = image.format
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise Unprocessable("the image is damaged or not what it claims to be", code="invalid_document") from exc
        return "image/png" if kind == "PNG" else "image/jpeg"
    raise ProblemError("identity documents are PDF files or PNG or JPEG images", status=415,
                       code="unsupported_media_type", title="Unsupported media type")


def _context(app_id: str, document_id: str) -> str:
    return f"kyc:document:{app_id}:{document_id}"


async def _rules(session: AsyncSession, app_id: str) -> KycRules:
    stored = await repo.get_settings(session, app_id)
    return (TreasurySettingsBody() if stored is None else TreasurySettingsBody.model_validate(stored)).kyc


async def _case(session: AsyncSession, runtime: Runtime, app_id: str, kind: WalletOwnerKind, subject_id: str,
                *, create: bool, lock: bool = False) -> KycCase | None:
    found = await repo.kyc_case_of(session, app_id, kind, subject_id, lock=lock)
    if found is None and create:
        now = runtime.clock.now()
        await repo.insert_kyc_case(session, {
            "id": new_id("kyc"), "app_id": app_id, "subject_kind": kind, "subject_id": subject_id,
            "status": "not_started", "full_name": None, "country": None, "date_of_birth": None, "reasons": [],
            "risk_score": 0, "risk_factors": [], "submissions": 0, "reviewer": None, "submitted_at": None,
            "decided_at": None, "expires_at": None, "created_at": now, "updated_at": now})
        found = await repo.kyc_case_of(session, app_id, kind, subject_id, lock=lock)
    return found


def _effective(case: KycCase, now: datetime) -> KycStatus:
    """The status, counting a verification past its expiry as expired (whether or not the job ran)."""
    if case.status == "verified" and case.expires_at is not None and case.expires_at <= now:
        return "expired"
    return cast("KycStatus", case.status)


async def add_document(session: AsyncSession, runtime: Runtime, caller: Caller, kind: WalletOwnerKind,
                       subject_id: str, document_kind: str, content: bytes) -> KycDocumentOut:
    await authorize_owner(session, caller, kind, subject_id)
    content_type = recognise(content)
    case = await _case(session, runtime, caller.app, kind, subject_id, create=True, lock=True)
    assert case is not None
    if _effective(case, runtime.clock.now()) not in OPEN:
        raise Conflict(f"the case is {case.status}; documents are added before submitting", code="kyc_not_open",
                       extra={"kyc_status": case.status})
    if await repo.count_kyc_documents(session, caller.app, case.id) >= MAX_DOCUMENTS:
        raise Unprocessable(f"at most {MAX_DOCUMENTS} documents per case", code="too_many_documents")
    document_id = new_id("doc")
    sealed = sealing.seal(sealing.data_key(runtime.settings), content, _context(caller.app, document_id))
    await repo.insert_kyc_document(session, {
        "id": document_id, "app_id": caller.app, "case_id": case.id, "kind": document_kind,
        "content_type": content_type, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(),
        "sealed": sealed, "uploaded_at": runtime.clock.now(), "deleted_at": None})
    found = await repo.kyc_document(session, caller.app, case.id, document_id)
    assert found is not None
    return KycDocumentOut.model_validate(found)


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


async def _risk(session: AsyncSession, app_id: str, case: KycCase, body: KycSubmitIn, rules: KycRules,
                now: datetime) -> list[dict[str, Any]]:
    factors: list[dict[str, Any]] = []

    def add(rule: str, points: int, detail: str) -> None:
        factors.append({"rule": rule, "points": points, "detail": detail})

    if body.country in rules.high_risk_countries:
        add("high_risk_country", 40, f"{body.country} is on the app's list of high-risk countries")
    if case.subject_kind == "streamer":
        streamer = await sponsors.get_streamer(session, app_id, case.subject_id)
        vouched = (streamer.demographics or {}).get("primary_country")
        if vouched and vouched != body.country:
            add("country_mismatch", 20, f"the audience's country is {vouched}, the document's {body.country}")
    holders = await repo.bank_holders(session, app_id, case.subject_kind, case.subject_id)
    if holders and all(h.casefold().split() != body.full_name.casefold().split() for h in holders):
        add("name_mismatch", 20, "the name is not the holder of any of their bank accounts")
    if _age(body.date_of_birth, now.date()) < 18:
        add("underage", 50, "younger than 18")
    if case.submissions >= 2:
        add("resubmitted", 15, f"submission number {case.submissions + 1}")
    volume = await repo.withdrawn_total_since(session, app_id, case.subject_kind, case.subject_id,
                                              now - timedelta(days=30))
    if volume > rules.high_volume_above:
        add("high_volume", 25, f"{volume} (minor units) asked for in 30 days")
    return factors


async def submit(session: AsyncSession, runtime: Runtime, caller: Caller, kind: WalletOwnerKind, subject_id: str,
                 body: KycSubmitIn, provider: VerificationProvider | None = None) -> KycOut:
    await authorize_owner(session, caller, kind, subject_id)
    now = runtime.clock.now()
    case = await _case(session, runtime, caller.app, kind, subject_id, create=True, lock=True)
    assert case is not None
    if _effective(case, now) not in OPEN:
        raise Conflict(f"the case is {case.status}", code="kyc_not_open", extra={"kyc_status": case.status})
    if await repo.count_kyc_documents(session, caller.app, case.id) == 0:
        raise Unprocessable("add an identity document before submitting", code="document_required")
    if body.date_of_birth >= now.date():
        raise Unprocessable("the date of birth must be in the past", code="invalid_date_of_birth")
    factors = await _risk(session, caller.app, case, body, await _rules(session, caller.app), now)
    status = await (provider or ManualReview()).start(case)
    await repo.update_kyc_case(session, caller.app, case.id, from_status=[case.status], values={
        "status": status, "full_name": body.full_name, "country": body.country, "date_of_birth": body.date_of_birth,
        "reasons": [], "risk_score": min(100, sum(f["points"] for f in factors)), "risk_factors": factors,
        "submissions": case.submissions + 1, "reviewer": None, "submitted_at": now, "decided_at": None,
        "expires_at": None, "updated_at": now})
    return await status_of(session, runtime, caller, kind, subject_id)


async def status_of(session: AsyncSession, runtime: Runtime, caller: Caller, kind: WalletOwnerKind,
                    subject_id: str) -> KycOut:
    await authorize_owner(session, caller, kind, subject_id)
    case = await _case(session, runtime, caller.app, kind, subject_id, create=False)
    if case is None:
        return KycOut(status="not_started")
    return KycOut(status=_effective(case, runtime.clock.now()),
                  reasons=case.reasons, documents=await repo.count_kyc_documents(session, caller.app, case.id),
                  submitted_at=case.submitted_at, decided_at=case.decided_at, expires_at=case.expires_at)


async def is_verified(session: AsyncSession, runtime: Runtime, app_id: str, kind: str, subject_id: str) -> str:
    """The subject's effective KYC status (``not_started`` without a case)."""
    case = await repo.kyc_case_of(session, app_id, kind, subject_id)
    return "not_started" if case is None else _effective(case, runtime.clock.now())


# Reviewers ------------------------------------------------------------------------------------


async def _case_out(session: AsyncSession, runtime: Runtime, case: KycCase) -> KycCaseOut:
    out = KycCaseOut.model_validate(case)
    out.status = _effective(case, runtime.clock.now())
    out.documents = [KycDocumentOut.model_validate(d) for d in await repo.kyc_documents(session, case.app_id,
                                                                                          case.id)]
    return out


async def _get(session: AsyncSession, app_id: str, case_id: str, *, lock: bool = False) -> KycCase:
    found = await repo.kyc_case(session, app_id, case_id, lock=lock)
    if found is None:
        raise NotFound(f"KYC case {case_id} not found", code="kyc_case_not_found")
    return found


async def case_of(session: AsyncSession, runtime: Runtime, caller: Caller, case_id: str) -> KycCaseOut:
    return await _case_out(session, runtime, await _get(session, caller.app, case_id))


async def queue(session: AsyncSession, runtime: Runtime, caller: Caller, status: str | None,
                paging: PageParams) -> Page[KycCaseOut]:
    rows = await repo.list_kyc_cases(session, caller.app, status, paging.after_str(), paging.limit)
    page = build_page(list(rows), paging.limit, lambda c: [c.id])
    return Page[KycCaseOut](items=[await _case_out(session, runtime, c) for c in page.items],
                            next_cursor=page.next_cursor)


async def start_review(session: AsyncSession, runtime: Runtime, caller: Caller, case_id: str) -> KycCaseOut:
    case = await _get(session, caller.app, case_id, lock=True)
    if not await repo.update_kyc_case(session, caller.app, case_id, from_status=["submitted"], values={
            "status": "in_review", "reviewer": caller.identity, "updated_at": runtime.clock.now()}):
        raise Conflict(f"the case is {case.status}, not submitted", code="kyc_not_submitted",
                       extra={"kyc_status": case.status})
    return await _case_out(session, runtime, await _get(session, caller.app, case_id))


async def decide(session: AsyncSession, runtime: Runtime, caller: Caller, case_id: str,
                 body: KycDecisionIn) -> KycCaseOut:
    case = await _get(session, caller.app, case_id, lock=True)
    if body.verdict == "rejected" and not body.reasons:
        raise Unprocessable("a rejection needs its reasons", code="reasons_required")
    now = runtime.clock.now()
    rules = await _rules(session, caller.app)
    expires = now + timedelta(days=rules.validity_days) if body.verdict == "verified" else None
    if not await repo.update_kyc_case(session, caller.app, case_id, from_status=["submitted", "in_review"], values={
            "status": body.verdict, "reasons": body.reasons, "reviewer": caller.identity, "decided_at": now,
            "expires_at": expires, "updated_at": now}):
        raise Conflict(f"the case is {case.status}; only a submitted case is decided", code="kyc_not_submitted",
                       extra={"kyc_status": case.status})
    return await _case_out(session, runtime, await _get(session, caller.app, case_id))


async def document_content(session: AsyncSession, runtime: Runtime, caller: Caller, case_id: str,
                           document_id: str) -> tuple[KycDocument, bytes]:
    """A document's content, for a reviewer (404 once deleted after the retention period)."""
    document = await repo.kyc_document(session, caller.app, case_id, document_id)
    if document is None or document.sealed is None:
        raise NotFound(f"document {document_id} not found", code="document_not_found")
    plain = sealing.unseal(sealing.data_key(runtime.settings), document.sealed, _context(caller.app, document.id))
    return document, plain


async def report(session: AsyncSession, runtime: Runtime, caller: Caller) -> KycReport:
    by_status, high, expiring, held, deleted = await repo.kyc_counts(session, caller.app, runtime.clock.now())
    return KycReport(by_status=by_status, high_risk_open=high, expiring_within_30_days=expiring,
                     documents_held=held, documents_deleted=deleted)


async def sweep(session: AsyncSession, runtime: Runtime) -> int:
    """Expire verifications past their date, and drop documents past their retention (a scheduled job)."""
    now = runtime.clock.now()
    expired = await repo.expire_kyc(session, now)
    retention = {app: TreasurySettingsBody.model_validate(body).kyc.retention_days
                 for app, body in (await repo.all_settings(session)).items()}
    return expired + await repo.purge_kyc_documents(session, now, retention, KycRules().retention_days)
