"""Adapters over transformers: vision encoders, VLMs, text LMs; the toy VLM."""
