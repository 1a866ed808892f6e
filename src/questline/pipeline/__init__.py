"""Events in: ingest, the event log, the outbox, and the batch contract processors implement."""
