"""Notifications: an in-app inbox per player and per brand or streamer account, e-mail, Discord and Telegram."""
