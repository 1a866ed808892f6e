"""Leaderboards: ranked boards defined as data, friends, privacy-aware reads, period archives."""
