"""The player profile: one read that gathers levels, balances and progress from every area."""
