"""LatentLens: contextual text bank, nearest-neighbour search, embedding/logit-lens baselines."""
