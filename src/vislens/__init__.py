"""vislens: find out what vision models and VLMs represent, and check it against judges and people.

Layer convention, everywhere in vislens: ``hidden_states[0]`` is the embedding output
(patch + position embeddings, before the first block) and ``hidden_states[L]`` is the
residual stream after block ``L`` (1-based). A VLM's *visual layer 0* is the connector
output, i.e. the LLM's input embeddings at the image-token positions.
"""

__version__ = "0.1.0"
