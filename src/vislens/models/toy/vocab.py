"""The toy VLM's word-level vocabulary and tokenizer (built offline with ``tokenizers``).

Every word the toy world's captions, questions and answers use is one token; anything
else maps to ``<unk>``; encoded texts start with ``<s>``. Punctuation is split off words, so ``"row 3, column 7."`` is
``row 3 , column 7 .``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vislens.data.synthetic import COLORS, SHAPES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<s>", "</s>", "<image>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, IMAGE)

# Words of the toy world's captions, questions and answers, in a fixed order so token ids
# never change between builds.
WORDS: tuple[str, ...] = (
    *SHAPES,
    *COLORS,
    *(str(i) for i in range(10)),
    "a", "an", "the", "in", "row", "column", "rows", "columns", "cell", "and",
    "is", "are", "there", "what", "which", "where", "how", "many", "color", "colour",
    "shape", "shapes", "object", "objects", "of", "image", "grid", "empty", "describe",
    "yes", "no", "none", "nowhere", "answer", "question", "any", "this", "picture",
    ";", ",", ".", "?", ":",
)  # fmt: skip

VOCAB: dict[str, int] = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, *WORDS))}


def build_tokenizer() -> PreTrainedTokenizerBase:
    """A fast tokenizer over ``VOCAB``: whitespace/punctuation split, one id per word."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=dict(VOCAB), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # WordPiece's cleanup joins " ," -> "," so decoded answers read as plain text.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    # Like Llama's tokenizers, every encoded text starts with <s>.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, VOCAB[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens={"image_token": IMAGE},
        model_max_length=512,
        padding_side="right",
    )
