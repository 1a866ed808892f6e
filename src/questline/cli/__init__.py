"""The ``questline`` command line."""
