"""Every table of every area, imported in one place for Alembic and ``metadata`` users."""

from questline.achievements.models import AchievementBackfill, AchievementBadge, PlayerAchievement
from questline.announcements.models import Announcement
from questline.assets.models import Asset
from questline.audit.models import AuditEntry
from questline.battlepass.models import BattlePassClaim, BattlePassXp, BattlePassXpDaily, PlayerPass
from questline.campaigns.models import Campaign, ImpressionHour, ImpressionMinute, ImpressionSeen, Participation
from questline.challenges.models import ChallengeClaim, ChallengeCompletion, ChallengeProgress
from questline.chat.models import ChatMessage, ChatReport, ChatRestriction, ChatSettings
from questline.communities.models import Community, CommunityMember
from questline.competitions.models import Activity as CompetitionActivity
from questline.competitions.models import Competition, Distribution, Participant, Prize, PrizeEvent, Result
from questline.conflicts.models import ConflictRule
from questline.finance.models import DeskSettings, Dispute, Evidence, FeeSchedule, Review
from questline.fulfilment.models import Fulfilment, FulfilmentTarget
from questline.gkeys.models import Energy, GKey
from questline.kit.db import Base
from questline.kit.idempotency import IdempotencyRecord
from questline.kit.jobs import JobRun
from questline.leaderboards.models import Friendship, LeaderboardArchive, LeaderboardEntry, LeaderboardPeriod
from questline.ledger.models import Currency, Hold, LedgerAccount, LedgerTransaction, Posting
from questline.links.models import LinkClick, LinkSalt, LinkVisit
from questline.notifications.models import Delivery as NotificationDelivery
from questline.notifications.models import Notification, Preferences, Template
from questline.pipeline.models import EventRecord, OutboxMessage, PartitionLease, StreamOffset, WorkerMember
from questline.players.models import Player
from questline.progression.models import PlayerTrack, XpActivity, XpDaily
from questline.referrals.models import Referral, ReferralCode, ReferralMilestone
from questline.relay.models import RelayCursor
from questline.rules.models import Definition, DefinitionVersion, PlayerStat
from questline.sharecards.models import ShareCard, ShareSettings
from questline.shop.models import InventoryGrant, InventoryItem, ShopCounter, ShopOrder
from questline.sponsors.models import Brand, BrandMember, MarketSettings, Streamer
from questline.streaks.models import PlayerStreak, StreakRestDay
from questline.tenancy.models import AdminUser, ApiKey, App, Membership, Organization, PlayerTokenEpoch, RefreshToken
from questline.treasury.models import (
    Deposit,
    ExchangeRate,
    KycCase,
    KycDocument,
    PaymentMethod,
    TreasurySettings,
    WebhookEvent,
    Withdrawal,
)
from questline.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "AchievementBackfill",
    "AchievementBadge",
    "AdminUser",
    "Announcement",
    "ApiKey",
    "App",
    "Asset",
    "AuditEntry",
    "BattlePassClaim",
    "BattlePassXp",
    "BattlePassXpDaily",
    "Brand",
    "BrandMember",
    "Campaign",
    "ChallengeClaim",
    "ChallengeCompletion",
    "ChallengeProgress",
    "ChatMessage",
    "ChatReport",
    "ChatRestriction",
    "ChatSettings",
    "Community",
    "CommunityMember",
    "Competition",
    "CompetitionActivity",
    "ConflictRule",
    "Currency",
    "Definition",
    "DefinitionVersion",
    "Deposit",
    "DeskSettings",
    "Dispute",
    "Distribution",
    "Energy",
    "EventRecord",
    "Evidence",
    "ExchangeRate",
    "FeeSchedule",
    "Friendship",
    "Fulfilment",
    "FulfilmentTarget",
    "GKey",
    "Hold",
    "IdempotencyRecord",
    "ImpressionHour",
    "ImpressionMinute",
    "ImpressionSeen",
    "InventoryGrant",
    "InventoryItem",
    "JobRun",
    "KycCase",
    "KycDocument",
    "LeaderboardArchive",
    "LeaderboardEntry",
    "LeaderboardPeriod",
    "LedgerAccount",
    "LedgerTransaction",
    "LinkClick",
    "LinkSalt",
    "LinkVisit",
    "MarketSettings",
    "Membership",
    "Notification",
    "NotificationDelivery",
    "Organization",
    "OutboxMessage",
    "Participant",
    "Participation",
    "PartitionLease",
    "PaymentMethod",
    "Player",
    "PlayerAchievement",
    "PlayerPass",
    "PlayerStat",
    "PlayerStreak",
    "PlayerTokenEpoch",
    "PlayerTrack",
    "Posting",
    "Preferences",
    "Prize",
    "PrizeEvent",
    "Referral",
    "ReferralCode",
    "ReferralMilestone",
    "RefreshToken",
    "RelayCursor",
    "Result",
    "Review",
    "ShareCard",
    "ShareSettings",
    "ShopCounter",
    "ShopOrder",
    "StreakRestDay",
    "StreamOffset",
    "Streamer",
    "Template",
    "TreasurySettings",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "Withdrawal",
    "WorkerMember",
    "XpActivity",
    "XpDaily",
    "metadata",
]
