"""Sponsorship campaigns: lifecycle, funding, the join chain, participation, overlay, impressions,
earnings, completion, discovery and analytics."""
