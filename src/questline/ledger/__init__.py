"""The points ledger: currencies, accounts, double-entry transactions and holds.

Only this package writes ledger rows; every other area posts through ``ledger.service``.
"""
