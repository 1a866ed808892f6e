"""Billing for brands: invoices from campaign spend and subscriptions, numbered without gaps at
finalization, taxed by the brand's country, credit notes, payment from the brand's wallet, and
reminders. Money moves only through the ledger; spend is read from the ledger."""
