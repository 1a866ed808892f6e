"""Challenges and quests: objectives over events, per period in the player's time zone, with claims."""
