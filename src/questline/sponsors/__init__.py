"""Marketplace accounts: brands (and their members) and streamers, their sign-in, profiles and wallets."""
