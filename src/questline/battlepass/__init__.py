"""Battle passes: seasons of tiers earned with pass XP, free and premium reward tracks."""
