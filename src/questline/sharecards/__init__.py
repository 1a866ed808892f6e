"""Share cards: a public, cacheable page and PNG image of something a player achieved.

An achievement unlock, a competition result, a streak milestone or a level reached. The player
(or the server) asks for a link; the card is drawn once and its bytes kept with it; the page
carries Open Graph and Twitter card tags so the link previews well. A player's cards are served
only while the player has made them public, and never reveal the player's id.
"""
