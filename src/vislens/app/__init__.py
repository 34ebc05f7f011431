"""The web workbench (Dash): annotation pages, explorer, feature and patch views."""
