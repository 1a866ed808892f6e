"""Gating: one requirement model and one check for every mechanic that lets some players in."""
