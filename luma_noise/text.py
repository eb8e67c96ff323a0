"""Text sample noise for LUMA: the reference tool's text noises, each a thin mapping to nlpaug.

Each noise is one nlpaug augmenter under the reference name, its parameters passed straight
through (reference defaults below, anything the augmenter's constructor accepts may be set):

| noise                 | nlpaug augmenter          | reference defaults                                  |
|-----------------------|---------------------------|-----------------------------------------------------|
| KeyboardNoise         | `nac.KeyboardAug`         | aug_char_min=1, aug_char_max=5, aug_word_min=3, aug_word_max=8 |
| OCRNoise              | `nac.OcrAug`              | aug_word_p=0.5                                      |
| RandomCharNoise       | `nac.RandomCharAug`       | nlpaug's                                            |
| RandomWordNoise       | `naw.RandomWordAug`       | nlpaug's (action="delete")                          |
| SpellingNoise         | `naw.SpellingAug`         | aug_p=0.4, nlpaug's bundled `spelling_en.txt`       |
| AntonymNoise          | `naw.AntonymAug`          | nlpaug's (WordNet)                                  |
| SynonymNoise          | `naw.SynonymAug`          | aug_src="wordnet"                                   |
| BackTranslationNoise  | `naw.BackTranslationAug`  | Helsinki-NLP/opus-mt-en-de → Helsinki-NLP/opus-mt-de-en through CTranslate2 (backend="ctranslate2", compute_type="int8", num_beams=1), device "cuda" if available else "cpu", batch_size 32 on cuda, 1 on cpu |

`TextNoise` draws one noise per text (uniformly, from that text's generator) and a seed, and
applies it. nlpaug draws from the global `random` and `np.random`; they are seeded from the
text's seed inside a save/restore, so results depend only on (text, seed) and the caller's
global state is left as it was (not thread-safe: one `TextNoise` call at a time per process).

Two thin nlpaug subclasses, same parameters, fix what would break LUMA's guarantees:
- SpellingNoise: nlpaug builds each word's misspelling list through a `set`, so which
  misspelling a seed picks changed with PYTHONHASHSEED (i.e. between processes); the lists are
  sorted here. nlpaug also keeps one dictionary per process and ignores a later `dict_path`;
  each augmenter here loads its own.
- BackTranslationNoise: nlpaug translates through a `DataLoader` with a worker process, which
  fails inside daemonic processes (`datasets.map(num_proc=...)`); here batches run in-process,
  are padded per batch (not to the longest text of the call), and never sample (`do_sample=False`).
  It takes three more parameters: `backend` ("ctranslate2" or "transformers"), `num_beams` (None:
  the model's generation config) and `compute_type` (CTranslate2's, e.g. "int8").
  The default is not the reference's: nlpaug's facebook/wmt19 models with 5 beams take 6.2 s of
  CPU per LUMA passage (8.6 s wall on 2 torch threads: 6-17 h for the ~7,265 texts of the default
  sample_noise on 2 cores); opus-mt's Marian models (~74M parameters each), converted once to
  CTranslate2 and run in int8 with greedy search, take 0.48 s of CPU, two texts at a time on 2
  cores (~30 min; benchmarks/bench_back_translation.py, docs/performance.md). Smaller models,
  8-bit weights and greedy decoding give blander, more literal paraphrases than the reference's.
  The reference is one field away: text_noise_params={"BackTranslationNoise": REFERENCE_BACK_TRANSLATION}.
  A text's logits differ slightly between being translated alone and in a padded batch (torch
  ~1e-6; CTranslate2 on CPU likewise), which can flip a near-tie, so only batch_size=1 makes a
  text's output independent of the other texts in the call: that is the default on CPU; on CUDA
  it is 32. CTranslate2 uses both cores anyway, one text per replica (`CTranslate2BackTranslation`).
  FSMT tokenizers need the `sacremoses` package, Marian ones `sentencepiece`, the default backend
  `ctranslate2`: checked in `TextNoise(...)`.

AntonymNoise and SynonymNoise need NLTK's WordNet and English POS tagger, checked in
`TextNoise(...)` (nlpaug would try to download them, and the tagger under its pre-3.9 name).

Blank texts (empty or whitespace only) are returned unchanged with "skipped": "blank text" in
their record: nlpaug returns [] for "" and strips "  " to "". Other texts go through nlpaug's
tokenise/detokenise round trip (e.g. surrounding whitespace is stripped).

Heavy imports (nlpaug pulls in torch and transformers, ~5 s) happen on the first `TextNoise(...)`.
"""

import contextlib
import copy
import functools
import importlib.util
import inspect
import json
import os
import random

import numpy as np

from luma_noise.records import NoiseRecord

TEXT_NOISES = ("KeyboardNoise", "OCRNoise", "RandomCharNoise", "RandomWordNoise", "SpellingNoise",
               "AntonymNoise", "SynonymNoise", "BackTranslationNoise")
DEFAULT_TEXT_NOISES = ("KeyboardNoise", "BackTranslationNoise", "SpellingNoise", "OCRNoise")

# noise -> (nlpaug module, augmenter class, reference defaults)
_NLPAUG = {
    "KeyboardNoise": ("char", "KeyboardAug",
                      {"aug_char_min": 1, "aug_char_max": 5, "aug_word_min": 3, "aug_word_max": 8}),
    "OCRNoise": ("char", "OcrAug", {"aug_word_p": 0.5}),
    "RandomCharNoise": ("char", "RandomCharAug", {}),
    "RandomWordNoise": ("word", "RandomWordAug", {}),
    "SpellingNoise": ("word", "SpellingAug", {"aug_p": 0.4}),
    "AntonymNoise": ("word", "AntonymAug", {}),
    "SynonymNoise": ("word", "SynonymAug", {"aug_src": "wordnet"}),
    "BackTranslationNoise": ("word", "BackTranslationAug",
                             {"from_model_name": "Helsinki-NLP/opus-mt-en-de",
                              "to_model_name": "Helsinki-NLP/opus-mt-de-en",
                              "backend": "ctranslate2", "compute_type": "int8", "num_beams": 1}),
}
# The reference tool's back-translation (nlpaug's default models and their beam search through
# `transformers`), one field away: text_noise_params={"BackTranslationNoise": REFERENCE_BACK_TRANSLATION}.
REFERENCE_BACK_TRANSLATION = {"from_model_name": "facebook/wmt19-en-de", "to_model_name": "facebook/wmt19-de-en",
                              "backend": "transformers", "num_beams": None}
_PROBABILITIES = ("aug_p", "aug_char_p", "aug_word_p")
_RANGES = (("aug_min", "aug_max"), ("aug_char_min", "aug_char_max"), ("aug_word_min", "aug_word_max"))
_COUNTS = ("aug_min", "aug_max", "aug_char_min", "aug_char_max", "aug_word_min", "aug_word_max",
           "min_char")
_POSITIVE = ("batch_size", "max_length", "num_beams")
_CHOICES = {
    ("RandomCharNoise", "action"): ("insert", "substitute", "swap", "delete"),
    ("RandomCharNoise", "swap_mode"): ("adjacent", "middle", "random"),
    ("RandomWordNoise", "action"): ("substitute", "swap", "delete", "crop"),
    ("SynonymNoise", "aug_src"): ("wordnet",),
    ("BackTranslationNoise", "backend"): ("ctranslate2", "transformers"),
    ("BackTranslationNoise", "compute_type"): ("default", "auto", "int8", "int8_float32", "int8_float16",
                                               "int8_bfloat16", "int16", "float16", "bfloat16", "float32"),
}
_FILE_PARAMS = ("dict_path", "model_path", "dict_of_path")

# Checkpoint families whose tokenizers need a package that transformers does not install.
_TOKENIZER_PACKAGES = {"facebook/wmt19-": "sacremoses", "Helsinki-NLP/opus-mt-": "sentencepiece"}

# NLTK downloader id -> resource path that nltk 3.9+ looks up (the tagger is JSON now, not the
# old pickled `averaged_perceptron_tagger`, which is what nlpaug would try to download).
_NLTK_RESOURCES = {"wordnet": "corpora/wordnet", "averaged_perceptron_tagger_eng":
                   "taggers/averaged_perceptron_tagger_eng/", "omw-2.0": "corpora/omw-2.0"}


def _nltk_has(resource: str) -> bool:
    import nltk

    for name in (resource, resource.rstrip("/") + ".zip"):
        try:
            nltk.data.find(name)
            return True
        except LookupError:
            pass
    return False


def missing_wordnet_data(lang: str = "eng") -> list[str]:
    """NLTK packages (downloader ids) that AntonymNoise/SynonymNoise need and that `nltk.data.path`
    lacks: WordNet, the English POS tagger, and for `lang` other than "eng" the Open Multilingual
    Wordnet. Empty list when all are there. Looks only; never downloads."""
    needed = ["wordnet", "averaged_perceptron_tagger_eng"] + ([] if lang == "eng" else ["omw-2.0"])
    return [package for package in needed if not _nltk_has(_NLTK_RESOURCES[package])]


def wordnet_install_command(packages=("wordnet", "averaged_perceptron_tagger_eng")) -> str:
    """The shell command that installs NLTK `packages` into NLTK's default data folder."""
    return "python -m nltk.downloader " + " ".join(packages)


def missing_tokenizer_packages(model_names) -> list[str]:
    """Python packages that the tokenizers of `model_names` (known families only: FSMT's
    facebook/wmt19-*, Marian's Helsinki-NLP/opus-mt-*) need and that are not installed."""
    return sorted({package for name in model_names for prefix, package in _TOKENIZER_PACKAGES.items()
                   if str(name).startswith(prefix) and importlib.util.find_spec(package) is None})


def text_noise_defaults(name: str) -> dict:
    """The parameters noise `name` uses unless told otherwise (a fresh dict).

    BackTranslationNoise's device is "cuda" when torch sees a GPU, else "cpu"; batch_size is 32
    on cuda and 1 on cpu (see the module docstring for why)."""
    _check_name(name)
    params = dict(_NLPAUG[name][2])
    if name == "BackTranslationNoise":
        import torch

        params["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        params["batch_size"] = 32 if params["device"].startswith("cuda") else 1
    return params


def _check_name(name: str) -> None:
    if name not in TEXT_NOISES:
        raise ValueError(f"unknown text noise {name!r}; allowed: {', '.join(TEXT_NOISES)}")


@functools.cache
def _nlpaug_class(name: str) -> type:
    """The public nlpaug augmenter class behind noise `name` (imports nlpaug on first use)."""
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    module, cls, _ = _NLPAUG[name]
    return getattr(nac if module == "char" else naw, cls)


def _check_param_names(name: str, params: dict) -> dict:
    """The augmenter's constructor defaults; ValueError for a parameter it does not accept."""
    signature = inspect.signature(_fixed_classes().get(name) or _nlpaug_class(name))
    accepted = {k: p.default for k, p in signature.parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key in params:
        if key not in accepted:
            raise ValueError(f"{name}: nlpaug's {_NLPAUG[name][1]} has no parameter {key!r}; "
                             f"accepted: {', '.join(accepted)}")
    return accepted


def _check_param_values(name: str, merged: dict) -> None:
    """ValueError for values that cannot be right (`merged`: nlpaug defaults + ours + caller's)."""
    def fail(key, why):
        raise ValueError(f"{name}: {key}={merged[key]!r} {why}")

    def is_number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for key in _PROBABILITIES:
        if key in merged and not (is_number(merged[key]) and 0 <= merged[key] <= 1):
            fail(key, "must be a probability in [0, 1]")
    for key in _COUNTS:
        if key in merged and merged[key] is not None and not (
                isinstance(merged[key], int) and not isinstance(merged[key], bool) and merged[key] >= 0):
            fail(key, "must be an integer >= 0 (or None where nlpaug allows it)")
    for key in _POSITIVE:
        if key in merged and merged[key] is not None and not (
                isinstance(merged[key], int) and not isinstance(merged[key], bool) and merged[key] >= 1):
            fail(key, "must be an integer >= 1")
    for low, high in _RANGES:
        if merged.get(low) is not None and merged.get(high) is not None and merged[low] > merged[high]:
            fail(low, f"is more than {high}={merged[high]!r}")
    for (noise, key), allowed in _CHOICES.items():
        if noise == name and merged.get(key) not in allowed:
            fail(key, f"is not one of {allowed}")
    for key in _FILE_PARAMS:
        if isinstance(merged.get(key), str) and not os.path.isfile(merged[key]):
            fail(key, "is not an existing file")
    if str(merged.get("device", "cpu")).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            fail("device", "asks for CUDA, which torch cannot see here; use \"cpu\"")


def _check_json(name: str, params: dict) -> None:
    """Records keep parameters as JSON, so every value must be JSON-encodable."""
    for key, value in params.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {key}={value!r} is not JSON-encodable; noise records store "
                             "parameters as JSON (pass data, not objects)") from None


@contextlib.contextmanager
def _seeded_global_random(seed: int):
    """Seed `random` and `np.random` with `seed` (0 <= seed < 2**32) inside; restore on exit."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(int(seed))
    np.random.seed(int(seed))
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


_FORKED = []  # non-empty in a process forked from the one that imported this module


def _note_fork() -> None:
    _FORKED.append(os.getpid())


os.register_at_fork(after_in_child=_note_fork)


def _torch_fork_safe(torch) -> None:
    """In a forked worker (`num_proc`), run torch on one thread. A parent that already ran
    torch's OpenMP pool leaves it unusable in the child: the first multi-threaded op hangs
    (PyTorch's DataLoader workers do the same for the same reason)."""
    if _FORKED and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# Translators a forked process inherited: never freed there, since freeing one waits for its
# worker threads, which exist only in the parent (a forked datasets worker exits by os._exit).
_INHERITED_TRANSLATORS = []


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class CTranslate2BackTranslation:
    """Back-translation through CTranslate2 (the model interface nlpaug's augmenter calls:
    `predict(texts) -> texts`, `device`).

    Both `transformers` checkpoints are converted once (`models.converted_model`) and loaded with
    `compute_type`. Each translator runs one text per batch (`batch_size` 1) on one thread per
    replica, with as many replicas as cores (one in a forked worker): a text is always computed
    alone, the same way, so its output does not depend on the other texts, the number of
    replicas or the process (CTranslate2 on CPU can change a text's output with the padding of a
    larger batch). Tokenisation is the checkpoint's own tokenizer. A forked process loads its
    own translators on first use (the parent's worker threads are not in it)."""

    def __init__(self, src_model_name, tgt_model_name, device="cpu", batch_size=1, max_length=300,
                 num_beams=1, compute_type="int8"):
        from transformers import AutoTokenizer

        self.device, self.batch_size, self.max_length, self.num_beams = device, batch_size, max_length, num_beams
        self.names, self.compute_type = (src_model_name, tgt_model_name), compute_type
        self.tokenizers = [AutoTokenizer.from_pretrained(name) for name in self.names]
        self._load()

    def _load(self) -> None:
        import ctranslate2
        import torch

        from .models import converted_model

        replicas = 1 if _FORKED else _cores()
        torch_threads = torch.get_num_threads()
        self.translators = [ctranslate2.Translator(str(converted_model(name)), device=self.device,
                                                   compute_type=self.compute_type, inter_threads=replicas,
                                                   intra_threads=1)
                            for name in self.names]
        torch.set_num_threads(torch_threads)  # the translator set this thread's OpenMP count to 1
        self.pid = os.getpid()

    def predict(self, texts, target_words=None, n=1):
        if self.pid != os.getpid():  # forked
            _INHERITED_TRANSLATORS.extend(self.translators)
            self._load()
        for translator, tokenizer in zip(self.translators, self.tokenizers):
            sources = [tokenizer.convert_ids_to_tokens(tokenizer(text, truncation=True)["input_ids"])
                       for text in texts]
            results = translator.translate_batch(sources, max_batch_size=self.batch_size, beam_size=self.num_beams,
                                                 max_decoding_length=self.max_length or 256)
            texts = [tokenizer.decode(tokenizer.convert_tokens_to_ids(result.hypotheses[0]), skip_special_tokens=True)
                     for result in results]
        return texts


@functools.cache
def _fixed_classes() -> dict:
    """nlpaug subclasses fixing what breaks LUMA's guarantees (see module docstring)."""
    import torch
    import nlpaug.augmenter.word as naw
    import nlpaug.model.lang_models as nml
    import nlpaug.model.word_dict as nmwd

    class SortedSpellingAug(naw.SpellingAug):
        def get_model(self, force_reload=False):
            model = nmwd.Spelling(self.dict_path, self.include_reverse)
            model.dict = {word: sorted(candidates) for word, candidates in model.dict.items()}
            return model

    class InProcessMtTransformers(nml.MtTransformers):
        num_beams = None  # None: the model's generation config

        def translate_one_step_batched(self, data, tokenizer, model):
            _torch_fork_safe(torch)
            beams = {"num_beams": self.num_beams} if self.num_beams else {}
            translated = []
            for start in range(0, len(data), self.batch_size):
                encoded = tokenizer(data[start:start + self.batch_size], padding=True,
                                    truncation=True, return_tensors="pt")
                with torch.no_grad():
                    ids = model.generate(input_ids=encoded["input_ids"].to(self.device),
                                         attention_mask=encoded["attention_mask"].to(self.device),
                                         max_length=self.max_length, do_sample=False, **beams)
                translated += tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
            return translated

    # Same class name on purpose: nlpaug's `augment` sends a list to the model in one call only
    # for classes *named* "BackTranslationAug" (else it calls `substitute` once per text).
    class BackTranslationAug(naw.BackTranslationAug):
        """nlpaug's, plus `backend` ("ctranslate2" or "transformers"), `num_beams` (None: the
        model's generation config; ctranslate2 needs a number) and `compute_type` (ctranslate2)."""

        def __init__(self, from_model_name="facebook/wmt19-en-de", to_model_name="facebook/wmt19-de-en",
                     name="BackTranslationAug", device="cpu", batch_size=32, max_length=300,
                     force_reload=False, verbose=0, backend="transformers", num_beams=None,
                     compute_type="int8"):
            self.engine = {"backend": backend, "num_beams": num_beams, "compute_type": compute_type}
            super().__init__(from_model_name=from_model_name, to_model_name=to_model_name, name=name,
                             device=device, batch_size=batch_size, max_length=max_length,
                             force_reload=force_reload, verbose=verbose)

        def get_model(self, from_model_name, to_model_name, device="cuda", force_reload=False,
                      batch_size=32, max_length=None):
            if self.engine["backend"] == "ctranslate2":
                return CTranslate2BackTranslation(from_model_name, to_model_name, device, batch_size,
                                                  max_length, self.engine["num_beams"] or 1,
                                                  self.engine["compute_type"])
            model = InProcessMtTransformers(src_model_name=from_model_name, tgt_model_name=to_model_name,
                                            device=device, batch_size=batch_size, max_length=max_length)
            model.num_beams = self.engine["num_beams"]
            return model

    return {"SpellingNoise": SortedSpellingAug, "BackTranslationNoise": BackTranslationAug}


class TextNoise:
    """Applies one randomly drawn text noise per text and records what it did.

    noises: names from `TEXT_NOISES`, drawn uniformly in this order; params: per noise name,
    parameters overriding `text_noise_defaults(name)`, passed straight to the nlpaug augmenter.
    Validates everything here without loading any model; augmenters are built on first use.
    """

    def __init__(self, noises=DEFAULT_TEXT_NOISES, params: dict[str, dict] | None = None):
        noises, params = tuple(noises), dict(params or {})
        if not noises or len(set(noises)) != len(noises):
            raise ValueError(f"noises must be distinct names from {TEXT_NOISES}, got {noises}")
        for name in noises + tuple(params):
            _check_name(name)
        for name in params:
            if name not in noises:
                raise ValueError(f"params given for {name!r}, which is not in noises {noises}")
        self.noises = noises
        self._params = {name: self._resolve(name, params.get(name) or {}) for name in noises}
        self._augmenters = {}
        self._check_dependencies()

    def _check_dependencies(self) -> None:
        """LookupError/ImportError now for data or packages that the noises would miss later."""
        if "BackTranslationNoise" in self.noises:
            bt = self._params["BackTranslationNoise"]
            missing = missing_tokenizer_packages([bt["from_model_name"], bt["to_model_name"]])
            if bt.get("backend") == "ctranslate2" and importlib.util.find_spec("ctranslate2") is None:
                missing.append("ctranslate2")
            if missing:
                raise ImportError(f"BackTranslationNoise ({bt.get('backend', 'transformers')} backend, "
                                  f"{bt['from_model_name']} and {bt['to_model_name']}) needs {', '.join(missing)}; "
                                  f"install with: pip install {' '.join(missing)}")
        for name in {"AntonymNoise", "SynonymNoise"} & set(self.noises):
            missing = missing_wordnet_data(self._params[name].get("lang", "eng"))
            if missing:
                raise LookupError(f"{name} needs NLTK data that is not installed ({', '.join(missing)}); "
                                  f"install it with: {wordnet_install_command(missing)}")

    @staticmethod
    def _resolve(name: str, overrides: dict) -> dict:
        """Defaults + `overrides` for noise `name`, checked (see `_check_param_values`)."""
        accepted = _check_param_names(name, overrides)
        params = {**text_noise_defaults(name), **overrides}
        _check_json(name, params)
        _check_param_values(name, {**accepted, **params})
        return params

    @property
    def params(self) -> dict[str, dict]:
        """Per noise name, the parameters passed to nlpaug (a copy)."""
        return copy.deepcopy(self._params)

    def _augmenter(self, name: str):
        if name not in self._augmenters:
            cls = _fixed_classes().get(name) or _nlpaug_class(name)
            self._augmenters[name] = cls(**self._params[name])
        return self._augmenters[name]

    def apply(self, name: str, texts: list[str], seeds: list[int]) -> list[str]:
        """Noise `name` applied to each text, seeded by its seed (ints in [0, 2**32)).

        Blank texts come back unchanged. BackTranslationNoise translates all non-blank texts in
        one nlpaug call (its result does not use the seeds). Replays a record: `apply(record.name,
        [text], [record.params["seed"]])`."""
        if name not in self.noises:
            raise ValueError(f"{name!r} is not one of this TextNoise's noises {self.noises}")
        if len(texts) != len(seeds):
            raise ValueError(f"got {len(texts)} texts but {len(seeds)} seeds")
        out = list(texts)
        todo = [i for i, text in enumerate(texts) if text.strip()]
        if todo and name == "BackTranslationNoise":
            for i, noisy in zip(todo, self._augmenter(name).augment([texts[i] for i in todo])):
                out[i] = noisy
        elif todo:
            augmenter = self._augmenter(name)
            for i in todo:
                with _seeded_global_random(seeds[i]):
                    out[i] = augmenter.augment(texts[i])[0]
        return out

    def __call__(self, texts: list[str], rngs: list[np.random.Generator]) -> list[tuple[str, NoiseRecord]]:
        """Noisy texts with their records, one per (text, rng) pair.

        Each rng draws the noise (uniformly over `self.noises`) and then a seed, so a text's result
        depends only on the text and its rng, not on the other texts in the call. Record:
        `NoiseRecord("text", name, {**params, "seed": seed})`, plus "skipped": "blank text" for
        blank texts."""
        if len(texts) != len(rngs):
            raise ValueError(f"got {len(texts)} texts but {len(rngs)} rngs")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        draws = [(self.noises[int(rng.integers(len(self.noises)))], int(rng.integers(2**32)))
                 for rng in rngs]
        out = list(texts)
        for name in self.noises:
            picked = [i for i, (drawn, _) in enumerate(draws) if drawn == name]
            noisy = self.apply(name, [texts[i] for i in picked], [draws[i][1] for i in picked])
            for i, text in zip(picked, noisy):
                out[i] = text
        return [(out[i], self._record(name, seed, blank=not texts[i].strip()))
                for i, (name, seed) in enumerate(draws)]

    def noise(self, texts: list[str], rngs: list[np.random.Generator]) -> list[tuple[str, NoiseRecord]]:
        """`self(texts, rngs)`: the `sample_noise.ModalityNoise` protocol."""
        return self(texts, rngs)

    def _record(self, name: str, seed: int, blank: bool) -> NoiseRecord:
        params = {**copy.deepcopy(self._params[name]), "seed": seed}
        if blank:
            params["skipped"] = "blank text"
        return NoiseRecord("text", name, params)
