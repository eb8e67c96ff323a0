"""Tests for luma_noise.noise.text: every noise for real, offline (tiny WordNet, tiny translation models)."""

import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import nltk
import numpy as np
import pytest

import luma_noise.noise.back_translation
import luma_noise.checkpoints
from tests.support.helpers import load
from luma_noise.noise.back_translation import REFERENCE_BACK_TRANSLATION, conversion_cache_dir, converted_model, missing_tokenizer_packages
from luma_noise.records import NoiseRecord
from luma_noise.rng import derive_rng
from luma_noise.required_models import ModelNotAvailableError, check_available
from luma_noise.noise.text import (DEFAULT_TEXT_NOISES, TEXT_NOISES, TextNoise, missing_wordnet_data, text_noise_defaults,
                             wordnet_install_command)
from luma_noise.fixtures.marian import WORDS, build_marian_model
from luma_noise.fixtures.text_models import (TINY_WORDNET_SENTENCES, build_tiny_fsmt_model, build_tiny_nltk_data,
                              build_tiny_translation_model)

TEXTS = list(TINY_WORDNET_SENTENCES)
BLANKS = ["", " ", "\t\n  "]


@pytest.fixture(scope="module")
def nltk_data(tmp_path_factory):
    """NLTK sees only the tiny WordNet and tagger; nlpaug reads WordNet through a fresh loader so
    the tiny corpus never becomes `nltk.corpus.wordnet` for other tests."""
    import nlpaug.model.word_dict  # noqa: F401  (its package namespace shadows the module name)
    from nltk.corpus.reader import CorpusReader, WordNetCorpusReader
    from nltk.corpus.util import LazyCorpusLoader
    from nltk.tag import _get_tagger

    root = build_tiny_nltk_data(tmp_path_factory.mktemp("nltk_data"))
    loader = LazyCorpusLoader("wordnet", WordNetCorpusReader,
                              LazyCorpusLoader("omw-2.0", CorpusReader, r".*/wn-data-.*\.tab"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [str(root)])
        patch.setattr(sys.modules["nlpaug.model.word_dict.wordnet"], "wordnet", loader)
        _get_tagger.cache_clear()
        yield root
    _get_tagger.cache_clear()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run several times faster on one thread than with threads fighting for cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    """Parameters pointing BackTranslationNoise at two tiny random Marian models (en→x, x→en),
    the rest its defaults: CTranslate2 int8, greedy, converted into the test cache."""
    folder = tmp_path_factory.mktemp("translation")
    return {"BackTranslationNoise": {
        "from_model_name": build_marian_model(folder / "forth", seed=0)[0],
        "to_model_name": build_marian_model(folder / "back", seed=1)[0],
        "max_length": 16}}


@pytest.fixture(scope="module")
def bart_params(tmp_path_factory):
    """Two tiny random BART models through the `transformers` backend."""
    folder = tmp_path_factory.mktemp("bart")
    return {"BackTranslationNoise": {
        "from_model_name": build_tiny_translation_model(folder / "forth", seed=0),
        "to_model_name": build_tiny_translation_model(folder / "back", seed=1),
        "max_length": 16, "backend": "transformers"}}


@pytest.fixture(scope="module")
def every_noise(nltk_data, params):
    return TextNoise(TEXT_NOISES, params)


def run(noise, texts, seed=0):
    return noise(texts, [derive_rng(seed, "text", i) for i in range(len(texts))])


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_each_noise_changes_a_normal_text(name, every_noise):
    for seed in range(4):
        outputs = every_noise.apply(name, TEXTS, [seed * 100 + i for i in range(len(TEXTS))])
        for text, noisy in zip(TEXTS, outputs):
            assert isinstance(noisy, str) and noisy.strip()
            assert noisy != text, (name, seed, text)


def test_records_say_what_was_done(every_noise):
    texts = TEXTS * 8
    results = run(every_noise, texts, seed=3)
    assert {record.name for _, record in results} == set(TEXT_NOISES)  # 32 draws reach all 8
    for text, (noisy, record) in zip(texts, results):
        assert isinstance(record, NoiseRecord) and record.modality == "text"
        params = dict(record.params)
        seed = params.pop("seed")
        assert params == every_noise.params[record.name]
        assert every_noise.apply(record.name, [text], [seed]) == [noisy]
        record.to_feature()  # JSON-encodable


def test_same_rng_same_output_whatever_the_batch(every_noise):
    texts = TEXTS * 4
    rngs = lambda order: [derive_rng(11, "text", i) for i in order]  # noqa: E731
    whole = run(every_noise, texts, seed=11)
    assert run(every_noise, texts, seed=11) == whole
    reverse = list(reversed(range(len(texts))))
    assert every_noise([texts[i] for i in reverse], rngs(reverse)) == [whole[i] for i in reverse]
    assert [every_noise([texts[i]], rngs([i]))[0] for i in range(len(texts))] == whole
    assert [noisy for noisy, _ in run(every_noise, texts, seed=12)] != [noisy for noisy, _ in whole]


def test_global_random_state_is_left_alone(every_noise):
    import torch

    random.seed(5)
    np.random.seed(5)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch_state = torch.random.get_rng_state()
    run(every_noise, TEXTS * 4)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_blank_texts_pass_unchanged(name, every_noise):
    assert every_noise.apply(name, BLANKS, [1, 2, 3]) == BLANKS
    mixed = BLANKS + TEXTS[:1]
    assert every_noise.apply(name, mixed, [1, 2, 3, 4])[:3] == BLANKS


NOWHERE = {"BackTranslationNoise": {"from_model_name": "/nonexistent/a", "to_model_name": "/nonexistent/b"}}


def test_blank_texts_are_recorded_as_skipped_and_load_nothing(nltk_data):
    noise = TextNoise(TEXT_NOISES, NOWHERE)
    for text, (noisy, record) in zip(BLANKS * 6, run(noise, BLANKS * 6)):
        assert noisy == text and record.params["skipped"] == "blank text"


def test_transformers_back_translation_plumbing(bart_params, monkeypatch):
    noise = TextNoise(("BackTranslationNoise",), {"BackTranslationNoise": {
        **bart_params["BackTranslationNoise"], "batch_size": 3}})
    outputs = noise.apply("BackTranslationNoise", TEXTS + [""], [0] * 5)
    assert all(isinstance(o, str) for o in outputs) and outputs[-1] == ""
    assert all(o != t for o, t in zip(outputs, TEXTS))
    one_by_one = [noise.apply("BackTranslationNoise", [t], [0])[0] for t in TEXTS]
    assert outputs[:-1] == one_by_one  # padded batches of 3 agree with the tiny model
    one = TextNoise(("BackTranslationNoise",), bart_params)  # batch_size 1 on cpu
    assert one.apply("BackTranslationNoise", TEXTS, [0] * 4) == one_by_one
    used = one.params["BackTranslationNoise"]
    if used["device"] == "cpu":
        assert used["batch_size"] == 1
        assert one._augmenter("BackTranslationNoise").model.get_device() == "cpu"
    three = TextNoise(("BackTranslationNoise",), {"BackTranslationNoise": {
        **bart_params["BackTranslationNoise"], "num_beams": 3}})
    model, beams = three._augmenter("BackTranslationNoise").model.src_model, []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kwargs: beams.append(kwargs.get("num_beams")) or generate(**kwargs))
    three.apply("BackTranslationNoise", TEXTS[:2], [0, 0])
    assert beams == [3, 3]  # num_beams reaches generate (None: the model's generation config)


def test_back_translation_through_fsmt_like_the_default_models(tmp_path):
    pytest.importorskip("sacremoses")
    models = {"from_model_name": build_tiny_fsmt_model(tmp_path / "en-de", ("en", "de"), seed=0),
              "to_model_name": build_tiny_fsmt_model(tmp_path / "de-en", ("de", "en"), seed=1),
              "max_length": 12, "batch_size": 2}
    noise = TextNoise(("BackTranslationNoise",), {"BackTranslationNoise": {**REFERENCE_BACK_TRANSLATION, **models}})
    assert noise.params["BackTranslationNoise"]["backend"] == "transformers"
    outputs = noise.apply("BackTranslationNoise", TEXTS, [0] * 4)
    assert all(isinstance(o, str) and o != t for o, t in zip(outputs, TEXTS))
    assert outputs == [noise.apply("BackTranslationNoise", [t], [0])[0] for t in TEXTS]


def _translate_in_daemon(noise_params):
    noise = TextNoise(("BackTranslationNoise",), noise_params)
    return noise.apply("BackTranslationNoise", ["The cat sat ."], [0])


def test_back_translation_works_in_daemonic_workers(params):
    """datasets.map(num_proc=...) runs in daemonic processes, where nlpaug's DataLoader worker fails."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        [result] = pool.map(_translate_in_daemon, [params])
    assert isinstance(result[0], str) and result[0] != "The cat sat ."


def test_spelling_noise_uses_its_own_sorted_dictionary(tmp_path):
    path = tmp_path / "misspellings.txt"
    path.write_text("horse horze hoarse hors\nquick quik\n")
    noise = TextNoise(("SpellingNoise",), {"SpellingNoise": {"dict_path": str(path), "aug_p": 1.0}})
    [noisy] = noise.apply("SpellingNoise", ["quick horse"], [0])
    assert noisy.split()[0] == "quik" and noisy.split()[1] in ("horze", "hoarse", "hors")
    model = noise._augmenter("SpellingNoise").model
    assert all(candidates == sorted(candidates) for candidates in model.dict.values())


def test_defaults():
    assert DEFAULT_TEXT_NOISES == ("KeyboardNoise", "BackTranslationNoise", "SpellingNoise", "OCRNoise")
    assert text_noise_defaults("KeyboardNoise") == {
        "aug_char_min": 1, "aug_char_max": 5, "aug_word_min": 3, "aug_word_max": 8}
    assert text_noise_defaults("SpellingNoise") == {"aug_p": 0.4}
    assert text_noise_defaults("OCRNoise") == {"aug_word_p": 0.5}
    bt = text_noise_defaults("BackTranslationNoise")
    assert bt["from_model_name"] == "Helsinki-NLP/opus-mt-en-de" and bt["to_model_name"] == "Helsinki-NLP/opus-mt-de-en"
    assert (bt["backend"], bt["compute_type"], bt["num_beams"]) == ("ctranslate2", "int8", 1)
    assert bt["device"] in ("cpu", "cuda")
    assert REFERENCE_BACK_TRANSLATION["from_model_name"] == "facebook/wmt19-en-de"


@pytest.mark.parametrize("noises, params, message", [
    (("KeyboardNoise", "Typo"), None, "unknown text noise 'Typo'; allowed: KeyboardNoise"),
    (("KeyboardNoise", "KeyboardNoise"), None, "distinct"),
    ((), None, "distinct"),
    (("OCRNoise",), {"KeyboardNoise": {}}, "not in noises"),
    (("KeyboardNoise",), {"KeyboardNoise": {"aug_p": 0.2}}, "KeyboardNoise: nlpaug's KeyboardAug has no parameter 'aug_p'; accepted: name, aug_char_min"),
    (("OCRNoise",), {"OCRNoise": {"aug_word_p": 1.5}}, "OCRNoise: aug_word_p=1.5 must be a probability in [0, 1]"),
    (("SpellingNoise",), {"SpellingNoise": {"aug_p": -0.1}}, "aug_p=-0.1 must be a probability"),
    (("KeyboardNoise",), {"KeyboardNoise": {"aug_char_min": 6}}, "aug_char_min=6 is more than aug_char_max=5"),
    (("RandomWordNoise",), {"RandomWordNoise": {"aug_min": 1.5}}, "aug_min=1.5 must be an integer"),
    (("RandomWordNoise",), {"RandomWordNoise": {"action": "explode"}}, "action='explode' is not one of"),
    (("BackTranslationNoise",), {"BackTranslationNoise": {"batch_size": 0}}, "batch_size=0 must be an integer >= 1"),
    (("BackTranslationNoise",), {"BackTranslationNoise": {"num_beams": 0}}, "num_beams=0 must be an integer >= 1"),
    (("BackTranslationNoise",), {"BackTranslationNoise": {"backend": "onnx"}}, "backend='onnx' is not one of"),
    (("BackTranslationNoise",), {"BackTranslationNoise": {"compute_type": "int4"}}, "compute_type='int4' is not one of"),
    (("SpellingNoise",), {"SpellingNoise": {"dict_path": "/nonexistent.txt"}}, "is not an existing file"),
    (("RandomWordNoise",), {"RandomWordNoise": {"tokenizer": str.split}}, "not JSON-encodable"),
])
def test_validation_errors(noises, params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TextNoise(noises, params)


def test_validation_loads_no_model():
    noise = TextNoise(DEFAULT_TEXT_NOISES, NOWHERE)
    assert noise.params["BackTranslationNoise"]["from_model_name"] == "/nonexistent/a"


def test_missing_tokenizer_package_is_reported_at_init(monkeypatch):
    monkeypatch.setattr(luma_noise.noise.back_translation, "_TOKENIZER_PACKAGES", {"Helsinki-NLP/opus-mt-": "no_such_package_x"})
    assert missing_tokenizer_packages(["Helsinki-NLP/opus-mt-en-de", "/local/model"]) == ["no_such_package_x"]
    with pytest.raises(ImportError, match="pip install no_such_package_x"):
        TextNoise(DEFAULT_TEXT_NOISES)  # the default models Helsinki-NLP/opus-mt-en-de, -de-en
    TextNoise(DEFAULT_TEXT_NOISES, NOWHERE)


def test_missing_wordnet_is_reported_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    assert missing_wordnet_data() == ["wordnet", "averaged_perceptron_tagger_eng"]
    command = "python -m nltk.downloader wordnet averaged_perceptron_tagger_eng"
    assert wordnet_install_command() == command
    for name in ("AntonymNoise", "SynonymNoise"):
        with pytest.raises(LookupError, match=command):
            TextNoise(("KeyboardNoise", name))
    TextNoise(DEFAULT_TEXT_NOISES, NOWHERE)  # the paper's defaults need no WordNet


def test_half_installed_wordnet_names_only_what_is_missing(nltk_data, tmp_path, monkeypatch):
    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "wordnet").symlink_to(nltk_data / "corpora" / "wordnet")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    assert missing_wordnet_data() == ["averaged_perceptron_tagger_eng"]
    with pytest.raises(LookupError, match="python -m nltk.downloader averaged_perceptron_tagger_eng$"):
        TextNoise(("SynonymNoise",))


# Back-translation's default backend: CTranslate2 (tiny Marian models, converted in the test cache).

VARIED = ["The cat sat .", "A small bird sings in the old tree , and it rained .", "ships sail",
          "the quick brown horse jumped over the lazy dog near the house at dawn .", "Dawn", "the sea"]


def test_ctranslate2_back_translation_is_the_default_and_translates(every_noise, params):
    model = every_noise._augmenter("BackTranslationNoise").model
    assert type(model).__name__ == "CTranslate2BackTranslation"
    outputs = every_noise.apply("BackTranslationNoise", VARIED, [0] * len(VARIED))
    assert all(isinstance(o, str) and o.strip() and o != t for o, t in zip(outputs, VARIED))
    assert len(set(outputs)) > 1
    assert set(" ".join(outputs).lower().split()) <= set(WORDS)  # decoded through the tokenizer, no <unk>/<pad>


def test_ctranslate2_output_independent_of_batch_and_replicas(params, monkeypatch):
    one_text_per_call = TextNoise(("BackTranslationNoise",), params)
    alone = [one_text_per_call.apply("BackTranslationNoise", [t], [0])[0] for t in VARIED]
    texts = VARIED * 3  # one call, mixed lengths, in any order
    assert one_text_per_call.apply("BackTranslationNoise", texts, [0] * len(texts)) == alone * 3
    for replicas in (1, 3):  # one replica per core: 1 in a forked worker
        monkeypatch.setattr(luma_noise.noise.back_translation, "_cores", lambda: replicas)
        noise = TextNoise(("BackTranslationNoise",), params)
        assert noise._augmenter("BackTranslationNoise").model.translators[0].num_translators == replicas
        reverse = list(reversed(texts))
        assert noise.apply("BackTranslationNoise", reverse, [0] * len(texts)) == list(reversed(alone * 3))


_INHERITED = []


def _apply_inherited(texts):
    return _INHERITED[0].apply("BackTranslationNoise", texts, [0] * len(texts))


def test_ctranslate2_translators_loaded_before_a_fork_work_in_the_child(params):
    """datasets' num_proc workers are forked from a process that may have back-translated already."""
    noise = TextNoise(("BackTranslationNoise",), params)
    here = noise.apply("BackTranslationNoise", VARIED, [0] * len(VARIED))
    _INHERITED[:] = [noise]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_apply_inherited, (VARIED,)).get(timeout=120)  # a hang fails here
    assert there == here


_OTHER_PROCESS = """
import json, sys
from luma_noise.noise.text import TextNoise
params, texts = json.loads(sys.argv[1])
print(json.dumps(TextNoise(["BackTranslationNoise"], params).apply("BackTranslationNoise", texts, [0] * len(texts))))
"""


def test_ctranslate2_output_same_in_another_process(params):
    """A fresh interpreter (another hash seed, its own threads) reuses the conversion and agrees."""
    noise = TextNoise(("BackTranslationNoise",), params)
    here = noise.apply("BackTranslationNoise", VARIED, [0] * len(VARIED))
    cached = sorted(p.name for p in conversion_cache_dir().iterdir())
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    result = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, json.dumps([params, VARIED])],
                            capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here
    assert sorted(p.name for p in conversion_cache_dir().iterdir()) == cached  # no second conversion


def test_conversion_is_cached_per_model_and_revision_and_atomic(tmp_path, monkeypatch):
    import ctranslate2

    model, _ = build_marian_model(tmp_path / "model", seed=3)
    cache = tmp_path / "ct2"
    calls = []
    real_convert = ctranslate2.converters.TransformersConverter.convert

    def failing_convert(self, output_dir, *args, **kwargs):
        calls.append(output_dir)
        real_convert(self, output_dir, *args, **kwargs)  # writes, then dies before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(ctranslate2.converters.TransformersConverter, "convert", failing_convert)
    with pytest.raises(KeyboardInterrupt):
        converted_model(model, cache)
    assert list(cache.iterdir()) == []  # nothing half-written left behind
    monkeypatch.undo()
    first = converted_model(model, cache)
    assert (first / "model.bin").is_file() and first.parent == cache and first.name.startswith("local--model--local-")
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert converted_model(model, cache) == first and (first / "model.bin").stat().st_mtime_ns == stamp
    assert len(calls) == 1
    (Path(model) / "config.json").touch()  # a changed checkpoint is another revision
    os.utime(Path(model) / "config.json", ns=(1, 1))
    second = converted_model(model, cache)
    assert second != first and sorted(cache.iterdir()) == sorted([first, second])


def test_hub_model_is_found_offline_and_converted_under_its_commit(tmp_path):
    """A model id in the (offline) Hugging Face cache: resolved to its snapshot, converted by id
    and commit, and cached under that commit."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = Path(constants.HF_HUB_CACHE) / "models--luma-tests--tiny-marian"
    build_marian_model(repo / "snapshots" / commit, seed=4)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    assert luma_noise.checkpoints.model_dir("luma-tests/tiny-marian") == repo / "snapshots" / commit
    converted = converted_model("luma-tests/tiny-marian", tmp_path / "ct2")
    assert converted == tmp_path / "ct2" / f"luma-tests--tiny-marian--{commit}" and (converted / "model.bin").is_file()


def test_check_available_lists_every_missing_model_with_remedies(params, tmp_path):
    from luma_noise.builder import LumaConfig

    config = LumaConfig(text_noise_ratio=0.25, text_noises=DEFAULT_TEXT_NOISES)
    with pytest.raises(ModelNotAvailableError) as error:
        check_available(config)  # the defaults, not in the empty offline test cache
    message = str(error.value)
    for needed in ("2 model(s)", "BackTranslationNoise: from_model_name='Helsinki-NLP/opus-mt-en-de'",
                   "to_model_name='Helsinki-NLP/opus-mt-de-en'", "HF_HUB_OFFLINE", "text_noise_params=",
                   "not in the local Hugging Face cache",
                   "drop BackTranslationNoise from text_noises: text_noises=['KeyboardNoise', 'SpellingNoise', 'OCRNoise']"):
        assert needed in message
    (tmp_path / "empty").mkdir()
    config.text_noise_params = {"BackTranslationNoise": {
        "from_model_name": params["BackTranslationNoise"]["from_model_name"], "to_model_name": str(tmp_path / "empty")}}
    with pytest.raises(ModelNotAvailableError, match=r"1 model\(s\).*\n.*to_model_name=.*empty.*without config.json"):
        check_available(config)
    config.text_noise_params = params
    check_available(config)
    config.text_noise_params, config.text_noises = None, ("KeyboardNoise", "OCRNoise")
    check_available(config)  # no back-translation: nothing to resolve
    config.text_noises, config.text_noise_ratio = DEFAULT_TEXT_NOISES, 0.0
    check_available(config)  # text not noised


def test_missing_models_fail_before_generation_through_load_dataset(mirror, tmp_path, monkeypatch):
    import luma_noise.builder

    def no_sources(*args, **kwargs):
        raise AssertionError("sources were read before the missing models were reported")

    monkeypatch.setattr(luma_noise.builder.sources, "source_bases", no_sources)
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotAvailableError) as error:
        load("sample_noise", mirror=str(mirror[0]), cache_dir=str(cache))
    message = str(error.value)
    for needed in ("BackTranslationNoise", "Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en",
                   "text_noise_params", "text_noises", "HF_HUB_OFFLINE"):
        assert needed in message
    written = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert not [p for p in written if p.suffix == ".arrow" or p.name == "dataset_info.json"], written
    assert not [p for p in written if "downloads" in p.parts], "failed after downloading sources"
