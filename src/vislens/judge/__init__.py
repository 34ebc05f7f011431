"""LLM/VLM judges: clients (OpenAI-compatible, local transformers) and judging tasks.

Modules, one concept each: ``client`` (the ``JudgeClient`` protocol), ``openai_client``,
``local_client``, ``messages`` (requests with images), ``cache`` (the SQLite judge cache),
``parsing``, ``runner`` (``judge_all``: cache, concurrency, re-ask, accounting),
``templates`` and ``tasks/`` (``classify``, ``latentlens``, ``images``, ``label``). Nothing
is imported here, so ``vislens --help`` stays fast; docs/judge.md shows the calls.
"""
