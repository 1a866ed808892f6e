"""Referrals: one readable code per player, signup tracking with anti-fraud, a status pipeline
with rewards to both sides, and tiered milestones."""
