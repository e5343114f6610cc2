"""Text data for language models: corpora, WhatsApp chat exports, tokenizers and batching.

Nothing here imports jax: the parsers and tokenizers are plain Python, so they can run in data-loading
processes without an accelerator.
"""

from rnnjax.data import whatsapp

__all__ = ["whatsapp"]
