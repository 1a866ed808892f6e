"""Reward fulfilment: rewards delivered outside the ledger (webhook, in-game callback, token transfer, by hand)."""
