"""XP/RP tracks, level curves, XP rules and combined levels."""
