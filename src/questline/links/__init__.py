"""Community referral links: the public redirect with a signed click id, click counting without
bots or repeats, attribution of joins into the referral program, and link analytics."""
