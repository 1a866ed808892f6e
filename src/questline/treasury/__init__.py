"""The treasury: exchange rates and conversions, wallet statements, payment providers and methods,
deposits and withdrawals. Money itself moves only through the ledger."""
