"""2-D maps of a study's items (``vislens map``), written in seed 003's cache layout."""
