"""Outbound webhooks by the Standard Webhooks specification: endpoints, signed deliveries, retries."""
