"""Campaign creatives: uploads validated by content, overlay renditions, files served with cache headers."""
