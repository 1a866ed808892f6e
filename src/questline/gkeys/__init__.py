"""G-Keys (one per streamer and category: available, locked, cooloff) and energy packs."""
