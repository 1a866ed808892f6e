"""The worker: takes batches from the event log, runs every processor, commits once per batch."""
