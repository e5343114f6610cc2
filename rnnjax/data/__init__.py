"""Text data for language models: corpora, WhatsApp chat exports, tokenizers and batching.

The modules here use only the standard library and NumPy (no JAX), so they can run in data-loading
processes without an accelerator; importing them through the `rnnjax` package still loads JAX.
"""

from rnnjax.data import corpora, labelled, ngram, text, vocabulary, whatsapp

__all__ = ["corpora", "labelled", "ngram", "text", "vocabulary", "whatsapp"]
