"""The judging tasks: feature labelling, description classification, LatentLens, image classification."""
