"""Players of an app: identity, time zone, privacy, and player tokens."""
