"""Rules as data: typed conditions, stats, and the versioned definitions every mechanic uses."""
