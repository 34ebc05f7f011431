"""Sparse autoencoders: modules, checkpoint formats, encoding, top-k items, training."""
