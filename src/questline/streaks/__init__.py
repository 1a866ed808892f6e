"""Streaks: consecutive days (or weeks) of activity, with freezes, rest days and milestone rewards."""
