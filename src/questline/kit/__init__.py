"""Cross-cutting pieces shared by every area: settings, database, errors, ids, time, paging.

The kit is the bottom layer: it imports no area (an import-linter contract checks it).
"""
