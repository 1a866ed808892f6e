"""Organizations, apps, API keys, admin users and their roles; who a caller is."""
