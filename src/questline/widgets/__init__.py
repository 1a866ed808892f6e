"""Embeddable widgets: one script and one stylesheet, served by the engine for host pages."""
