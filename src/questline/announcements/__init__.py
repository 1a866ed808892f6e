"""Announcements from app admins and community admins to an app, a community or a competition."""
