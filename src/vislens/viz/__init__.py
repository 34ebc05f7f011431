"""Static figures (matplotlib-free where plotly suffices)."""
