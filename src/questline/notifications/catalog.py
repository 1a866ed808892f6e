"""The notification types, the outbox messages they come from, and their built-in wording (English).

Each entry maps an outbox message type to the notifications it makes and to whom: the player the
message names, a competition's participants, or the brand or streamer account it concerns. An
app can word any type differently per locale (``PUT /v1/notification-templates/{type}/{locale}``);
these are the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Recipients = Literal["player", "participants", "returning", "brand", "streamer", "owner", "entered_top",
                     "overtaken"]


@dataclass(frozen=True)
class Wording:
    subject: str
    text: str


@dataclass(frozen=True)
class Kind:
    type: str
    source: str  # the outbox message type
    recipients: Recipients
    wording: Wording


CATALOG: tuple[Kind, ...] = (
    Kind("competition_announced", "competition.created", "returning",
         Wording("New competition: {{ name }}", "{{ name }} runs from {{ starts_at }} to {{ ends_at }} (UTC). "
                 "Join in!")),
    Kind("competition_started", "competition.started", "participants",
         Wording("{{ name or 'Your competition' }} has started", "{{ name or 'Your competition' }} has started: "
                 "every score counts from now.")),
    Kind("competition_starting_soon", "competition.starting_soon", "participants",
         Wording("{{ name }} starts soon", "{{ name }} starts at {{ at }} (UTC). Get ready.")),
    Kind("competition_ending_soon", "competition.ending_soon", "participants",
         Wording("{{ name }} ends soon", "{{ name }} ends at {{ at }} (UTC): last chance to climb.")),
    Kind("competition_ended", "competition.ended", "participants",
         Wording("The competition has ended", "The competition has ended; standings are final.")),
    Kind("rank_entered_top", "competition.top_changed", "entered_top",
         Wording("You are in the top {{ top }}", "You entered the top {{ top }}: rank {{ rank }}.")),
    Kind("rank_overtaken", "competition.top_changed", "overtaken",
         Wording("You were overtaken", "Someone passed you: you are now {{ 'rank ' ~ rank if rank else "
                 "'out of the top ' ~ top }}.")),
    Kind("prize_awarded", "prize.awarded", "player",
         Wording("You won a prize", "You placed {{ rank }} and won {{ amount }} {{ currency or kind }}.")),
    Kind("competitions_prizes_distributed", "competition.prizes_distributed", "participants",
         Wording("Prizes are out", "The prizes of the competition have been distributed ({{ prizes }} winners).")),
    Kind("level_up", "level.up", "player",
         Wording("Level {{ to }}!", "You reached level {{ to }}{{ ' (' ~ name ~ ')' if name }} on {{ track }}.")),
    Kind("milestone", "streak.milestone", "player",
         Wording("Streak milestone", "Your {{ streak or 'streak' }} reached {{ length or count or days }}.")),
    Kind("achievement_unlocked", "achievement.unlocked", "player",
         Wording("Achievement unlocked: {{ name or achievement or key }}",
                 "You unlocked {{ name or achievement or key }}.")),
    Kind("streak_broken", "streak.broken", "player",
         Wording("Your streak ended", "Your {{ streak or 'streak' }} ended; start a new one today.")),
    Kind("streak_at_risk", "streak.at_risk", "player",
         Wording("Your {{ name }} streak is at risk",
                 "Your {{ name }} streak of {{ current }} ends at {{ ends_local }} unless you play before then"
                 "{{ ' (a freeze will be used)' if freezes_available }}.")),
    Kind("challenge_completed", "challenge.completed", "player",
         Wording("Challenge completed", "You completed {{ name or challenge or key }}.")),
    Kind("reward_delivered", "reward.status", "player",
         Wording("Your reward is on its way", "Your {{ kind }} reward was delivered{{ ' (' ~ reference ~ ')' "
                 "if reference }}.")),
    Kind("campaign_joined", "campaign.joined", "brand",
         Wording("{{ streamer_name }} joined {{ campaign_title }}",
                 "{{ streamer_name }} joined your campaign {{ campaign_title }}.")),
    Kind("campaign_approved", "campaign.approved", "brand",
         Wording("Campaign approved", "Your campaign {{ title or campaign_title or campaign_id }} was approved.")),
    Kind("campaign_completed", "campaign.completed", "brand",
         Wording("Campaign completed: {{ title or campaign_id }}",
                 "Your campaign {{ title or campaign_id }} is complete: {{ impressions }} impressions, {{ spent }} "
                 "{{ currency }} spent, {{ budget_returned }} {{ currency }} returned to your balance.")),
    Kind("payout", "withdrawal.paid", "owner",
         Wording("Your payout of {{ amount }} {{ currency }} was paid",
                 "Your withdrawal of {{ amount }} {{ currency }} (minor units) was paid{{ ' (reference ' ~ "
                 "reference ~ ')' if reference }}.")),
    # Sent directly by the announcements area (``notifications.service.send_direct``), not from the outbox.
    Kind("announcement", "announcement.direct", "player", Wording("{{ title }}", "{{ body }}")),
)
TYPES: tuple[str, ...] = tuple(k.type for k in CATALOG)
BY_SOURCE: dict[str, list[Kind]] = {}
for _kind in CATALOG:
    BY_SOURCE.setdefault(_kind.source, []).append(_kind)
BY_TYPE: dict[str, Kind] = {k.type: k for k in CATALOG}


def wanted(kind: Kind, payload: dict[str, Any]) -> bool:
    """Whether a message makes this notification at all (a reward only once delivered)."""
    if kind.source == "reward.status":
        return payload.get("status") == "completed"
    return True
