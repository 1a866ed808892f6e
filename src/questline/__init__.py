"""Questline: a self-hosted gamification and live-ops engine."""

__all__ = ["__version__"]

__version__ = "0.1.0"
