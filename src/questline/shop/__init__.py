"""Items, player inventories, and the shop that sells items for points (two-phase purchases)."""
