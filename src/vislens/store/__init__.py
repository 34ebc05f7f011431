"""On-disk stores: activation shards, sparse codes, the annotation/judgment database."""
