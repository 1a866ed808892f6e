"""Chat rooms per community and per competition on the live channels, with moderation."""
