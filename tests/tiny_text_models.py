"""Tiny offline stand-ins for the data and models that text noise needs, built by code.

- `build_tiny_nltk_data(root)`: a WordNet database in the Princeton file format (exact byte
  offsets) and an averaged-perceptron POS tagger in NLTK's JSON format, laid out as NLTK's
  downloader would (`root/corpora/wordnet/`, `root/taggers/averaged_perceptron_tagger_eng/`).
- `build_tiny_translation_model(path, seed)`: a randomly initialised BART seq2seq model and a
  word-level fast tokenizer, saved with `save_pretrained` so that `from_pretrained(path)` (what
  nlpaug calls with a model name) loads it like a real checkpoint.
"""

import json
from pathlib import Path

# Sentences the tiny tagger knows every word of, and whose content words are all in the tiny
# WordNet with at least one synonym; each has at least one word with an antonym.
TINY_WORDNET_SENTENCES = (
    "The quick horse jumped happily.",
    "A big old ship sailed slowly.",
    "The small bird rose quickly.",
    "The sad dog fell.",
)

# (part of speech, lexicographer file number, lemmas, gloss); the key names the synset.
_SYNSETS = {
    "quick": ("a", 0, ["quick", "fast", "speedy"], "moving with speed"),
    "slow": ("a", 0, ["slow", "sluggish"], "not moving quickly"),
    "big": ("a", 0, ["big", "large"], "above average in size"),
    "small": ("a", 0, ["small", "little"], "below average in size"),
    "old": ("a", 0, ["old", "aged"], "having lived long"),
    "young": ("a", 0, ["young", "youthful"], "having lived a short time"),
    "happy": ("a", 0, ["happy", "glad"], "feeling joy"),
    "sad": ("a", 0, ["sad", "unhappy"], "feeling sorrow"),
    "quickly": ("r", 2, ["quickly", "rapidly"], "with speed"),
    "slowly": ("r", 2, ["slowly", "easy"], "without speed"),
    "happily": ("r", 2, ["happily", "merrily"], "in a joyful way"),
    "sadly": ("r", 2, ["sadly", "unhappily"], "in a sorrowful way"),
    "horse": ("n", 4, ["horse", "equine"], "a hoofed animal"),
    "ship": ("n", 5, ["ship", "vessel"], "a large boat"),
    "bird": ("n", 4, ["bird", "fowl"], "a feathered animal"),
    "dog": ("n", 4, ["dog", "domestic_dog"], "a barking animal"),
    "jump": ("v", 6, ["jump", "leap", "bound"], "move forward by leaps"),
    "sail": ("v", 6, ["sail", "navigate"], "travel on water"),
    "rise": ("v", 6, ["rise", "ascend", "go_up"], "move upward"),
    "fall": ("v", 6, ["fall", "descend", "go_down"], "move downward"),
}
_ANTONYMS = [("quick", "slow"), ("big", "small"), ("old", "young"), ("happy", "sad"),
             ("quickly", "slowly"), ("happily", "sadly"), ("rise", "fall")]
_LEXNAMES = ["adj.all\t3", "adj.pert\t3", "adv.all\t4", "noun.Tops\t1", "noun.animal\t1",
             "noun.artifact\t1", "verb.motion\t2"]
_EXCEPTIONS = {"adj": ["bigger big", "older old"], "adv": [], "noun": ["geese goose"],
               "verb": ["fell fall", "rose rise", "ran run"]}
_POS_FILE = {"a": "adj", "r": "adv", "n": "noun", "v": "verb"}
_SS_TYPE_NUMBER = {"n": 1, "v": 2, "a": 3, "r": 4}
_HEADER = "  1 Tiny WordNet-format database for LUMA's tests, written by tests/tiny_text_models.py\n"

_TAGS = {
    "DT": "the a", "JJ": "quick slow big small old young happy sad",
    "RB": "quickly slowly happily sadly", "NN": "horse ship bird dog house",
    "VBD": "jumped sailed rose fell", ".": ".",
}


def _data_lines(offsets: dict) -> dict:
    """One data-file line (str) per synset key, with pointers resolved through `offsets`."""
    pointers = {key: [] for key in _SYNSETS}
    for a, b in _ANTONYMS:
        for src, dst in ((a, b), (b, a)):
            pointers[src].append(f"! {offsets[dst]:08d} {_SYNSETS[dst][0]} 0101")
    lines = {}
    for key, (pos, lexfile, words, gloss) in _SYNSETS.items():
        fields = [f"{offsets[key]:08d}", f"{lexfile:02d}", pos, f"{len(words):02x}"]
        fields += [f"{w} 0" for w in words] + [f"{len(pointers[key]):03d}"] + pointers[key]
        if pos == "v":
            fields.append("01 + 02 00")
        lines[key] = " ".join(fields) + f" | {gloss}  \n"
    return lines


def _index_pointers(word: str) -> str:
    """The index file's `p_cnt [ptr_symbol...]` field for `word`: "1 !" if it has an antonym."""
    keys = {k for k, (_, _, words, _) in _SYNSETS.items() if word in words}
    return "1 !" if keys & {k for pair in _ANTONYMS for k in pair} else "0"


def _write_wordnet(folder: Path) -> None:
    """Write lexnames, data.*, index.*, index.sense and *.exc into `folder`."""
    offsets = {key: 0 for key in _SYNSETS}
    for _ in range(2):  # offsets are fixed-width, so line lengths don't depend on them
        lines = _data_lines(offsets)
        for pos in _POS_FILE:
            position = len(_HEADER.encode())
            for key in (k for k in _SYNSETS if _SYNSETS[k][0] == pos):
                offsets[key] = position
                position += len(lines[key].encode())
    lines = _data_lines(offsets)
    index, senses = {pos: {} for pos in _POS_FILE}, []
    for key, (pos, lexfile, words, _) in _SYNSETS.items():
        for word in words:
            index[pos].setdefault(word, []).append(offsets[key])
            senses.append(f"{word}%{_SS_TYPE_NUMBER[pos]}:{lexfile:02d}:00:: {offsets[key]:08d} 1 0\n")
    for pos, name in _POS_FILE.items():
        body = "".join(lines[k] for k in _SYNSETS if _SYNSETS[k][0] == pos)
        (folder / f"data.{name}").write_bytes((_HEADER + body).encode())
        rows = [f"{w} {pos} {len(o)} {_index_pointers(w)} {len(o)} 0 " + " ".join(f"{x:08d}" for x in o)
                + "  \n" for w, o in sorted(index[pos].items())]
        (folder / f"index.{name}").write_text(_HEADER + "".join(rows))
        (folder / f"{name}.exc").write_text("".join(f"{e}\n" for e in _EXCEPTIONS[name]))
    (folder / "index.sense").write_text("".join(sorted(senses)))
    (folder / "lexnames").write_text("".join(f"{i:02d}\t{n}\n" for i, n in enumerate(_LEXNAMES)))


def _write_tagger(folder: Path) -> None:
    """An averaged perceptron tagger that knows the test words by its tag dictionary.

    Unknown words fall back to the perceptron, whose only weight makes them nouns.
    """
    tagdict = {}
    for tag, words in _TAGS.items():
        for word in words.split():
            tagdict[word] = tagdict[word.capitalize()] = tag
    params = {"weights": {"bias": {"NN": 1.0}}, "tagdict": tagdict, "classes": sorted(_TAGS)}
    for attr, value in params.items():
        (folder / f"averaged_perceptron_tagger_eng.{attr}.json").write_text(json.dumps(value))


def build_tiny_nltk_data(root: Path) -> Path:
    """Write a tiny WordNet and POS tagger under `root` (an NLTK data dir); return `root`."""
    wordnet = Path(root) / "corpora" / "wordnet"
    tagger = Path(root) / "taggers" / "averaged_perceptron_tagger_eng"
    wordnet.mkdir(parents=True)
    tagger.mkdir(parents=True)
    _write_wordnet(wordnet)
    _write_tagger(tagger)
    return Path(root)


_CORPUS = ("the quick brown horse jumped over the lazy dog . a small bird sings in the old tree . "
           "ships sail across the sea at dawn . the cat sat near the house")


def build_tiny_translation_model(path: Path, seed: int, max_positions: int = 64) -> str:
    """Save a random tiny BART model and word-level tokenizer to `path`; return it as str.

    Special tokens other than `</s>` get a large negative logit bias, so generation emits
    words (garbage, but words) instead of stopping at once.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    words = sorted(set(_CORPUS.split()) | {w.capitalize() for w in _CORPUS.split()})
    vocab = {token: i for i, token in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", model_input_names=["input_ids", "attention_mask"])
    config = BartConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=max_positions, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=2, forced_eos_token_id=None, init_std=1.0)
    with torch.random.fork_rng(devices=[]):  # leave the caller's torch RNG alone
        torch.manual_seed(seed)
        model = BartForConditionalGeneration(config)
    with torch.no_grad():
        model.final_logits_bias[:, [0, 1, 3]] = -1e4
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return str(path)


def build_tiny_fsmt_model(path: Path, langs: tuple, seed: int) -> str:
    """Save a random tiny FSMT model (the architecture of nlpaug's default facebook/wmt19-*
    models, beam search from its generation config) with a character-level FSMTTokenizer
    (needs `sacremoses`) to `path`; return it as str."""
    import string

    import torch
    from transformers import FSMTConfig, FSMTForConditionalGeneration, FSMTTokenizer

    path = Path(path)
    path.mkdir(parents=True)
    chars = string.ascii_letters + string.digits + ".,!?'"
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + list(chars) + [c + "</w>" for c in chars]
    for name in ("vocab-src.json", "vocab-tgt.json"):
        (path / name).write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (path / "merges.txt").write_text("")  # no merges: one token per character
    FSMTTokenizer(langs=list(langs), src_vocab_file=str(path / "vocab-src.json"),
                  tgt_vocab_file=str(path / "vocab-tgt.json"),
                  merges_file=str(path / "merges.txt")).save_pretrained(path)
    config = FSMTConfig(
        langs=list(langs), src_vocab_size=len(tokens), tgt_vocab_size=len(tokens), d_model=16,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64, init_std=1.0,
        num_beams=2, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        FSMTForConditionalGeneration(config).save_pretrained(path)
    return str(path)
