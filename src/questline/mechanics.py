"""Every mechanic of the engine, wired in one place: the definition kinds and the processors.

The composition root of the pipeline: it imports every area (so no area imports it) and
puts their definition kinds and processors on a runtime for the API, the worker and the CLI.
"""


from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import service as achievements
from questline.achievements.processor import AchievementsProcessor
from questline.achievements.schemas import AchievementDef
from questline.battlepass import service as battlepass
from questline.battlepass.processor import BattlePassProcessor
from questline.battlepass.schemas import BattlePassDef, PassXpRuleDef
from questline.campaigns import live as campaign_totals
from questline.challenges import service as challenges
from questline.challenges.processor import ChallengeProcessor
from questline.challenges.schemas import ChallengeDef
from questline.communities.extension import extend as extend_communities
from questline.competitions import service as competitions
from questline.competitions.processor import CompetitionProcessor
from questline.finance import disputes as finance_disputes
from questline.finance import fees as finance_fees
from questline.fulfilment import service as fulfilment
from questline.kit.privacy import REGISTRY, PlayerDataArea, PlayerDataRegistry
from questline.kit.privacy import PlayerColumn as Col
from questline.kit.runtime import Runtime
from questline.leaderboards import service as leaderboards
from questline.leaderboards.processor import LeaderboardProcessor
from questline.leaderboards.schemas import LeaderboardDef
from questline.ledger import service as ledger
from questline.links.service import LinkExtension
from questline.notifications import service as notifications
from questline.notifications.service import NotificationsSubscriber
from questline.pipeline.batch import Processor
from questline.pipeline.states import PROCESSORS
from questline.pipeline.stats import StatsProcessor
from questline.progression.processor import ProgressionProcessor
from questline.progression.schemas import CombinedLevelDef, TrackDef, XpRuleDef
from questline.realtime.service import CampaignTotalsPublisher, InboxPublisher
from questline.realtime.subscriber import RealtimeSubscriber
from questline.referrals import service as referrals
from questline.referrals.processor import ReferralsMetricProcessor
from questline.referrals.schemas import ReferralProgramDef
from questline.relay import service as relay
from questline.relay.service import Subscriber
from questline.rules.registry import DefinitionKind, KindRegistry
from questline.rules.schemas import DefinitionBody, StatDef
from questline.shop import service as shop
from questline.shop.schemas import ItemDef
from questline.streaks import service as streaks
from questline.streaks.processor import StreaksProcessor
from questline.streaks.schemas import StreakDef
from questline.webhooks.subscriber import WebhookSubscriber


async def _reward_currency_exists(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    assert isinstance(body, TrackDef)
    reward = body.level_up_reward
    if reward is not None and not await ledger.currency_exists(session, app_id, reward.currency):
        return [f"level_up_reward: unknown currency {reward.currency!r}; create it with PUT /v1/currencies/{{code}}"]
    return []


def definition_kinds() -> list[DefinitionKind]:
    """Every kind of definition the engine understands; one line per area."""
    return [
        DefinitionKind("stat", StatDef, "a per-player aggregate over events, per period"),
        DefinitionKind("xp_track", TrackDef, "an XP track with its level curve", check=_reward_currency_exists,
                       answers_for=("level",)),
        DefinitionKind("xp_rule", XpRuleDef, "events earn XP on a track, with an optional daily cap"),
        DefinitionKind("combined_level", CombinedLevelDef, "levels that need thresholds on several tracks",
                       answers_for=("level",)),
        DefinitionKind("item", ItemDef, "an item of the catalog: sold in the shop with a price, or granted",
                       check=shop.check_currency),
        DefinitionKind("battle_pass", BattlePassDef, "a battle pass season: tiers, free and premium rewards",
                       check=battlepass.check_currencies, keyed_check=battlepass.check_one_featured),
        DefinitionKind("pass_xp_rule", PassXpRuleDef, "events earn battle pass XP, with an optional daily limit"),
        DefinitionKind("referral_program", ReferralProgramDef, "referral rewards per status, milestones, fraud limits",
                       keyed_check=referrals.check_program),
        DefinitionKind("challenge", ChallengeDef, "a challenge or quest: objectives over events, per period",
                       check=challenges.check_definition),
        DefinitionKind("streak", StreakDef, "consecutive days or weeks of activity", check=streaks.check_definition),
        DefinitionKind("achievement", AchievementDef, "unlocked once when criteria hold",
                       check=achievements.check_definition),
        DefinitionKind("leaderboard", LeaderboardDef, "a ranked board by a stat or event field, per period and scope"),
    ]


def processors(runtime: Runtime) -> list[Processor]:
    """Every processor, in the order they see each event (stats first); one line per area."""
    return [StatsProcessor(), ProgressionProcessor(), BattlePassProcessor(), ReferralsMetricProcessor(),
            StreaksProcessor(), ChallengeProcessor(runtime),
            AchievementsProcessor(), LeaderboardProcessor(runtime),
            CompetitionProcessor(runtime)]


def player_data() -> list[PlayerDataArea]:
    """Where every area keeps a player's data, and what erasure does to it; one entry per area.
    Export and erasure (``GET /v1/players/{id}/export``, ``DELETE /v1/players/{id}``) walk this."""
    referral_personal = ("email_hash", "email_domain", "ip", "device_fingerprint")
    return [
        PlayerDataArea("players", (
            Col("players"), Col("player_token_epochs", erase="keep"),  # the epoch keeps revoked tokens dead
            Col("idempotency_keys", "caller", app_column="scope", prefix="player:"),
            Col("events"), Col("outbox"), Col("player_stats"))),
        PlayerDataArea("ledger", (
            Col("ledger_accounts", "owner_id", erase="anonymize", where={"owner_kind": "player"}),
            Col("ledger_holds", erase="anonymize"))),
        PlayerDataArea("progression", (Col("player_tracks"), Col("xp_activities"), Col("xp_daily"))),
        PlayerDataArea("battlepass", (Col("battle_pass_players"), Col("battle_pass_xp"), Col("battle_pass_xp_daily"),
                                      Col("battle_pass_claims"))),
        PlayerDataArea("challenges", (Col("challenge_progress"), Col("challenge_completions"),
                                      Col("challenge_claims"), Col("challenge_replay_ids"))),
        PlayerDataArea("streaks", (Col("player_streaks"), Col("streak_rest_days"))),
        PlayerDataArea("achievements", (Col("player_achievements"),)),
        PlayerDataArea("leaderboards", (Col("leaderboard_entries"), Col("leaderboard_archives"),
                                        Col("player_friends"), Col("player_friends", "friend_id")),
                       on_erase=leaderboards.forget_player),
        PlayerDataArea("competitions", (
            Col("competition_participants"), Col("competition_results"),
            Col("competition_prizes", erase="anonymize"), Col("competition_prize_history", erase="anonymize"))),
        PlayerDataArea("shop", (Col("inventory_items"), Col("inventory_grants"), Col("shop_orders"),
                                Col("shop_counters"))),
        PlayerDataArea("referrals", (
            Col("referral_codes"), Col("referral_milestones"),
            Col("referrals", "referrer_id", erase="anonymize", clear=referral_personal),
            Col("referrals", "referee_id", erase="anonymize", clear=referral_personal))),
        PlayerDataArea("communities", (Col("community_members"),)),
        PlayerDataArea("links", (Col("link_clicks", "referrer_id", erase="anonymize"),
                                 Col("link_clicks", "joined_player_id", erase="anonymize"))),
        PlayerDataArea("marketplace", (Col("streamers", erase="anonymize"), Col("participations", erase="anonymize"))),
        PlayerDataArea("fulfilment", (Col("fulfilments", erase="anonymize"),)),
        PlayerDataArea("notifications", (
            Col("notification_preferences"),
            Col("notifications", "recipient_id", where={"recipient_kind": "player"}),
            Col("notification_deliveries", "recipient_id", where={"recipient_kind": "player"}))),
        PlayerDataArea("chat", (Col("chat_messages"), Col("chat_restrictions"), Col("chat_reports"),
                                Col("chat_reports", "author_id"))),
        PlayerDataArea("announcements", (
            Col("announcements", "author_id", erase="anonymize", where={"author_kind": "player"}),)),
        PlayerDataArea("sharecards", (Col("share_cards"), Col("share_card_settings"))),
    ]
def subscribers(runtime: Runtime) -> list[Subscriber]:
    """Every consumer of the outbox relay (``questline.relay``); one line per area."""
    return [
        WebhookSubscriber(runtime),
        RealtimeSubscriber(runtime),
        NotificationsSubscriber(runtime),
    ]


def install(runtime: Runtime) -> None:
    """Put the engine's definition kinds and processors on a runtime (app start, CLI, worker)."""
    runtime.extensions.setdefault("rules.registry", KindRegistry(definition_kinds()))
    runtime.extensions.setdefault(PROCESSORS, processors(runtime))
    runtime.extensions.setdefault(REGISTRY, PlayerDataRegistry(player_data()))
    relay.install(runtime, subscribers(runtime))
    fulfilment.listen(runtime, competitions.PRIZE_SOURCE, competitions.on_fulfilment)
    notifications.listen_inbox(runtime, "realtime", InboxPublisher(runtime))
    if "realtime" not in runtime.extensions.get(campaign_totals.LISTENERS, {}):
        campaign_totals.listen_totals(runtime, "realtime", CampaignTotalsPublisher(runtime))
    finance_fees.install(runtime)  # the fee structure, applied when a campaign is approved
    finance_disputes.install(runtime)  # chargebacks from the PSP open disputes
    extend_communities(runtime, LinkExtension())


