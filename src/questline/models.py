"""Every table of every area, imported in one place for Alembic and ``metadata`` users."""

from questline.achievements.models import AchievementBackfill, AchievementBadge, PlayerAchievement
from questline.battlepass.models import BattlePassClaim, BattlePassXp, BattlePassXpDaily, PlayerPass
from questline.challenges.models import ChallengeClaim, ChallengeCompletion, ChallengeProgress
from questline.competitions.models import Activity as CompetitionActivity
from questline.competitions.models import Competition, Distribution, Participant, Prize, PrizeEvent, Result
from questline.kit.db import Base
from questline.kit.idempotency import IdempotencyRecord
from questline.kit.jobs import JobRun
from questline.leaderboards.models import Friendship, LeaderboardArchive, LeaderboardEntry, LeaderboardPeriod
from questline.ledger.models import Currency, Hold, LedgerAccount, LedgerTransaction, Posting
from questline.players.models import Player
from questline.referrals.models import Referral, ReferralCode, ReferralMilestone
from questline.shop.models import InventoryGrant, InventoryItem, ShopCounter, ShopOrder
from questline.streaks.models import PlayerStreak, StreakRestDay
from questline.tenancy.models import AdminUser, ApiKey, App, Membership, Organization, RefreshToken

metadata = Base.metadata

__all__ = [
    "AdminUser", "ApiKey", "App", "Currency", "Hold", "IdempotencyRecord", "JobRun", "LedgerAccount",
    "LedgerTransaction", "Membership", "Organization", "Player", "Posting",
    "RefreshToken", "metadata", "Friendship", "LeaderboardArchive", "LeaderboardEntry", "LeaderboardPeriod",
    "BattlePassClaim", "BattlePassXp", "BattlePassXpDaily", "PlayerPass", "InventoryGrant", "InventoryItem",
    "ShopCounter", "ShopOrder", "ChallengeClaim", "ChallengeCompletion", "ChallengeProgress",
    "Competition", "CompetitionActivity", "Distribution", "Participant", "Prize", "PrizeEvent", "Result",
    "Referral", "ReferralCode", "ReferralMilestone",
    "AchievementBackfill", "AchievementBadge", "PlayerAchievement", "PlayerStreak", "StreakRestDay",
]
