"""The admin console at /console: server-rendered pages over the engine's own API."""
