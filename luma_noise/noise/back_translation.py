"""Back-translation for `TextNoise`'s BackTranslationNoise: nlpaug's augmenter with an in-process
engine (CTranslate2 by default, or `transformers`), and what keeps it safe in forked workers.

nlpaug's `BackTranslationAug` translates through a `DataLoader` with a worker process, which
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

Fork safety (`datasets.map(num_proc=...)` and `num_proc` builds fork the process): a forked worker
runs torch on one thread (`_torch_fork_safe`), loads its own CTranslate2 translators on first use
and never frees the ones it inherited (their worker threads exist only in the parent).

`converted_model(model_id)` is the CTranslate2 copy of a `transformers` checkpoint, converted on
first use and kept under `<datasets cache>/luma_ctranslate2/<model id>--<revision>/`: the revision
is the Hub commit of the cached snapshot, or for a local folder a fingerprint of its files' names,
sizes and modification times. The conversion is written to a temporary folder beside it and renamed
into place, so an interrupted conversion never leaves a half-written model behind.
"""

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ..checkpoints import model_dir

# The reference tool's back-translation (nlpaug's default models and their beam search through
# `transformers`), one field away: text_noise_params={"BackTranslationNoise": REFERENCE_BACK_TRANSLATION}.
REFERENCE_BACK_TRANSLATION = {"from_model_name": "facebook/wmt19-en-de", "to_model_name": "facebook/wmt19-de-en",
                              "backend": "transformers", "num_beams": None}

# Checkpoint families whose tokenizers need a package that transformers does not install.
_TOKENIZER_PACKAGES = {"facebook/wmt19-": "sacremoses", "Helsinki-NLP/opus-mt-": "sentencepiece"}


def missing_tokenizer_packages(model_names) -> list[str]:
    """Python packages that the tokenizers of `model_names` (known families only: FSMT's
    facebook/wmt19-*, Marian's Helsinki-NLP/opus-mt-*) need and that are not installed."""
    return sorted({package for name in model_names for prefix, package in _TOKENIZER_PACKAGES.items()
                   if str(name).startswith(prefix) and importlib.util.find_spec(package) is None})


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

    Both `transformers` checkpoints are converted once (`converted_model`) and loaded with
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
def augmenter_class() -> type:
    """nlpaug's `BackTranslationAug` with `backend`, `num_beams` and `compute_type` (see the
    module docstring); imports nlpaug and torch on first use."""
    import torch
    import nlpaug.augmenter.word as naw
    import nlpaug.model.lang_models as nml

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

    return BackTranslationAug


def _revision(folder: Path) -> str:
    """The Hub commit of a cached snapshot, else a fingerprint of the folder's files."""
    if folder.parent.name == "snapshots":
        return folder.name
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "local-" + digest.hexdigest()[:16]


def conversion_cache_dir() -> Path:
    """`<datasets cache>/luma_ctranslate2` (the datasets cache as `datasets.config` resolves it,
    like `features.default_cache_dir`)."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE).expanduser() / "luma_ctranslate2"


def converted_model(model_id: str, cache_dir: Path | None = None) -> Path:
    """The CTranslate2 model folder for `transformers` checkpoint `model_id` (float32 weights;
    the compute type is chosen when loading), converted on first use (a few seconds for
    opus-mt) into `cache_dir` (default `conversion_cache_dir()`)."""
    source, local = model_dir(model_id), os.path.isdir(model_id)
    revision = _revision(source)
    name = "local--" + source.resolve().name if local else model_id.strip("/").replace("/", "--")
    target = Path(cache_dir or conversion_cache_dir()) / f"{name}--{revision}"
    if (target / "model.bin").is_file():
        return target
    import ctranslate2

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # a Hub model by id and commit: `from_pretrained` fetches weights not cached yet
        converter = (ctranslate2.converters.TransformersConverter(str(source)) if local else
                     ctranslate2.converters.TransformersConverter(model_id, revision=revision))
        converter.convert(str(partial), force=True)
        os.rename(partial, target)
    except OSError:
        if not (target / "model.bin").is_file():  # not just another process winning the race
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
