"""Image sources: a folder, a CSV/JSONL manifest, and the synthetic grid world of seed 004."""
