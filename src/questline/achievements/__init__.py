"""Achievements: badges unlocked once when a player meets a condition, with rewards, rarity and images."""
