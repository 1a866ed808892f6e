"""Live channels: WebSocket and Server-Sent Events, with offsets, bounded history and recovery."""
