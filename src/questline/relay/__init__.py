"""The outbox relay: committed outbox rows, in order, to every subscriber at least once."""
