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
- BackTranslationNoise: nlpaug's translates through a worker process, which fails inside daemonic
  processes; it runs in-process here, through CTranslate2 by default (`luma_noise.noise.back_translation`,
  which says why its default models are not the reference's and holds its fork-safety machinery).

AntonymNoise and SynonymNoise need NLTK's WordNet and English POS tagger, checked in
`TextNoise(...)` (nlpaug would try to download them, and the tagger under its pre-3.9 name).

Blank texts (empty or whitespace only) are returned unchanged with "skipped": "blank text" in
their record: nlpaug returns [] for "" and strips "  " to "". Other texts go through nlpaug's
tokenise/detokenise round trip (e.g. surrounding whitespace is stripped).

Heavy imports (nlpaug pulls in torch and transformers, ~5 s) happen on the first `TextNoise(...)`.

Longer than 300 lines (50 of them this docstring) because every noise's parameters are checked
here, against the augmenter they are passed to, before any model loads.
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

from luma_noise.noise import back_translation
from luma_noise.noise.back_translation import missing_tokenizer_packages
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


@functools.cache
def _fixed_classes() -> dict:
    """nlpaug subclasses fixing what breaks LUMA's guarantees (see module docstring)."""
    import nlpaug.augmenter.word as naw
    import nlpaug.model.word_dict as nmwd

    class SortedSpellingAug(naw.SpellingAug):
        def get_model(self, force_reload=False):
            model = nmwd.Spelling(self.dict_path, self.include_reverse)
            model.dict = {word: sorted(candidates) for word, candidates in model.dict.items()}
            return model

    return {"SpellingNoise": SortedSpellingAug, "BackTranslationNoise": back_translation.augmenter_class()}


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
