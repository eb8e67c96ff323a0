"""Random Marian translation models (the architecture of Helsinki-NLP/opus-mt-*), built offline.

`build_marian_model(path, seed, size)` saves a randomly initialised `MarianMTModel` and a
word-level fast tokenizer with `save_pretrained`, so that `from_pretrained(path)` (and
CTranslate2's converter) load it like a real checkpoint. The vocabulary is laid out as opus-mt's:
`</s>` 0, `<unk>` 1, words, and `<pad>` last (CTranslate2's Marian converter drops the last token,
which it expects to be `<pad>`); decoding starts from `<pad>`.

Random weights translate into garbage, so the output layer's bias keeps `</s>`, `<unk>` and `<pad>`
from being emitted: every translation is words and runs to its maximum length (the compute of a
real translation of that length; the bias is a buffer real checkpoints have too, zero there).

size "tiny": d_model 16, one layer each side, a vocabulary of the corpus's words (for tests).
size "opus-mt": opus-mt-en-de's shape (d_model 512, 6 + 6 layers, 8 heads, FFN 2048, swish,
vocabulary 58,101, shared and tied embeddings; ~74M parameters), the vocabulary filled up with
made-up words ("x00055") that each decode to one word and re-tokenise to one token.
"""

from pathlib import Path

WORDS = ("the quick brown horse jumped over the lazy dog . a small bird sings in the old tree . "
         "ships sail across the sea at dawn . the cat sat near the house , and it rained").split()

SIZES = {
    "tiny": dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                 max_position_embeddings=128, init_std=1.0),
    "opus-mt": dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                    decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                    max_position_embeddings=512),
}
OPUS_MT_VOCAB = 58101


def marian_tokenizer(vocab_size: int | None = None):
    """Word-level fast tokenizer with opus-mt's special-token layout (see module docstring);
    `vocab_size` None: just the corpus's words (and their capitalised forms)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(WORDS) | {w.capitalize() for w in WORDS})
    tokens = ["</s>", "<unk>"] + words
    if vocab_size is not None:
        width = len(str(vocab_size))
        tokens += [f"x{i:0{width}d}" for i in range(len(tokens), vocab_size - 1)]
    tokens.append("<pad>")
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 0)])
    backend.decoder = decoders.WordPiece()  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_input_names=["input_ids", "attention_mask"])


def build_marian_model(path: Path, seed: int, size: str = "tiny", num_beams: int = 4) -> tuple[str, int]:
    """Save a random Marian model of `size` ("tiny" or "opus-mt") and its tokenizer to `path`;
    return (path as str, parameter count). `num_beams`: the generation config's beam width
    (opus-mt's is 4)."""
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel

    tokenizer = marian_tokenizer(OPUS_MT_VOCAB if size == "opus-mt" else None)
    eos, unk, pad = tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id
    config = MarianConfig(vocab_size=len(tokenizer), **SIZES[size], activation_function="swish",
                          scale_embedding=True, share_encoder_decoder_embeddings=True,
                          tie_word_embeddings=True, pad_token_id=pad, eos_token_id=eos,
                          decoder_start_token_id=pad, forced_eos_token_id=eos)
    with torch.random.fork_rng(devices=[]):  # leave the caller's torch RNG alone
        torch.manual_seed(seed)
        model = MarianMTModel(config)
    with torch.no_grad():
        model.final_logits_bias[:, [eos, unk, pad]] = -1e4
    model.generation_config = GenerationConfig(
        num_beams=num_beams, max_length=512, pad_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos,
        decoder_start_token_id=pad, bad_words_ids=[[pad]])
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path), sum(p.numel() for p in model.parameters())
