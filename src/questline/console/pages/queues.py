"""The queues that wait for a person besides claims: referral reviews, campaign approvals, KYC reviews,
withdrawals and disputes. Each is a list call and its decisions; one page and one form serve them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from questline.console.engine_api import Answer
from questline.console.paging import Pager
from questline.console.session import Route, api, app_page, esc, forbidden, form, page, to_login

Body = Callable[[dict[str, str]], Any]
PAGE = 50  # items of a queue a page


def _note(posted: dict[str, str]) -> Any:
    return {"note": posted["reason"]} if posted.get("reason") else None


def _reason(posted: dict[str, str]) -> Any:
    return {"reason": posted.get("reason", "")}


def _nothing(posted: dict[str, str]) -> Any:
    return None


def _verified(posted: dict[str, str]) -> Any:
    return {"verdict": "verified"}


def _rejected(posted: dict[str, str]) -> Any:
    return {"verdict": "rejected", "reasons": [posted["reason"]] if posted.get("reason") else []}


def _refund(posted: dict[str, str]) -> Any:
    return {"verdict": "refund", "reason": posted.get("reason", "")}


def _no_refund(posted: dict[str, str]) -> Any:
    return {"verdict": "reject", "reason": posted.get("reason", "")}


@dataclass(frozen=True)
class Decision:
    name: str  # the button's value, and its label
    path: str  # under the item's path
    body: Body
    needs_reason: bool = False


@dataclass(frozen=True)
class Queue:
    name: str
    title: str
    path: str  # the list; an item is path/{id}
    params: dict[str, Any]
    columns: tuple[tuple[str, str], ...]  # (heading, field)
    decisions: tuple[Decision, ...]
    empty: str


QUEUES = {q.name: q for q in (
    Queue("referrals", "Referral reviews", "/v1/referrals", {},
          (("referrer", "referrer_id"), ("referee", "referee_id"), ("status", "status"),
           ("why flagged", "fraud_reasons"), ("e-mail domain", "email_domain"), ("address", "ip")),
          (Decision("approve", "approve", _note), Decision("reject", "reject", _note)),
          "No flagged referral waits for a verdict."),
    Queue("campaigns", "Campaign approvals", "/v1/campaigns", {"status": "pending_review"},
          (("campaign", "title"), ("brand", "brand_id"), ("budget", "budget"), ("currency", "currency"),
           ("rate per mille", "rate_per_mille"), ("submitted", "submitted_at")),
          (Decision("approve", "approve", _nothing), Decision("reject", "reject", _reason, needs_reason=True)),
          "No campaign waits for approval."),
    Queue("kyc", "KYC reviews", "/v1/finance/kyc", {"status": "submitted"},
          (("subject", "subject_id"), ("name", "full_name"), ("country", "country"), ("born", "date_of_birth"),
           ("risk", "risk_score"), ("submissions", "submissions")),
          (Decision("verify", "decision", _verified), Decision("reject", "decision", _rejected, needs_reason=True)),
          "No KYC case waits for review."),
    Queue("withdrawals", "Withdrawals", "/v1/finance/withdrawals", {"status": "awaiting_approval"},
          (("owner", "owner_id"), ("amount", "amount"), ("currency", "currency"), ("provider", "provider"),
           ("approvals", "approvals"), ("needed", "approvals_needed")),
          (Decision("approve", "approve", _nothing), Decision("reject", "reject", _reason, needs_reason=True)),
          "No withdrawal waits for approval."),
    Queue("disputes", "Disputes", "/v1/disputes", {"status": "open"},
          (("brand", "brand_id"), ("streamer", "streamer_id"), ("campaign", "campaign_id"),
           ("impressions", "impressions"), ("amount", "amount"), ("currency", "currency"), ("reason", "reason")),
          (Decision("refund", "decision", _refund, needs_reason=True),
           Decision("reject", "decision", _no_refund, needs_reason=True)),
          "No dispute is open."),
)}


def _list_path(queue: Queue) -> str:
    return "/v1/referrals/review" if queue.name == "referrals" else queue.path


def _queue(request: Request) -> Queue | None:
    return QUEUES.get(str(request.path_params["queue"]))


async def queue_page(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    queue = _queue(request)
    if queue is None:
        return page(request, "error.html", 404, app_id=app_id, message="There is no such queue.")
    pager = Pager.of(request)
    return await app_page(request, app_id, "queue.html",
                          {"items": ("GET", _list_path(queue), pager.params(PAGE, **queue.params))},
                          queue=queue, queues=QUEUES.values(), pager=pager, paged="items")


async def decide(request: Request) -> Response:
    app_id = str(request.path_params["app_id"])
    item_id = str(request.path_params["item_id"])
    queue = _queue(request)
    if queue is None:
        return page(request, "error.html", 404, app_id=app_id, message="There is no such queue.")
    posted = await form(request)
    if posted is None:
        return forbidden(request)
    decision = next((d for d in queue.decisions if d.name == posted.get("decision")), None)
    async with api(request, app_id) as engine:
        if decision is None:
            done = Answer(422, {"code": "unknown_decision", "detail": posted.get("decision", "")})
        else:
            done = await engine.call("POST", f"{queue.path}/{esc(item_id)}/{decision.path}", json=decision.body(posted))
        if done.status == 401:
            return to_login(request)
        pager = Pager()  # after a decision: the first page again
        items = await engine.call("GET", _list_path(queue), params=pager.params(PAGE, **queue.params))
    return page(request, "queue.html", 200 if done.ok else done.status, app_id=app_id, items=items, queue=queue,
                pager=pager.after(items.body),
                queues=QUEUES.values(), error=done.problem, decided=item_id if done.ok else None,
                decision=decision.name if decision else "")


ROUTES: list[Route] = [
    ("GET", "/console/apps/{app_id}/queues/{queue}", queue_page),
    ("POST", "/console/apps/{app_id}/queues/{queue}/{item_id}", decide),
]
