"""Competitions: tournaments and trading-style events with entry, a board, prizes and claims."""
