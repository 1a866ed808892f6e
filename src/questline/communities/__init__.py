"""Communities (guilds) with referral slugs, member metadata, moderation and starter rewards; and
``gating``, the requirement check other mechanics call."""
