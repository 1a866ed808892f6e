"""Conflict rules: what keeps a streamer from running campaigns that clash."""
