"""LLM/VLM judges: clients (OpenAI-compatible, local transformers) and judging tasks."""
