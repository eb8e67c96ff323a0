"""The LUMA dataset builder: its config class, the pinned upstream sources and the builder.

It lives in the package so that the same class serves the loading script `luma.py` (which
subclasses it, for `load_dataset` on `datasets` 3.x and the Hub) and `luma_noise.load` on any
`datasets` release, from a checkout or an installed wheel. The heavy lifting (sources,
alignment, noise, sampling) is in the other `luma_noise` modules.
"""

import dataclasses
import inspect
import io
import math
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import datasets

from . import audio
from . import background
from . import config_fields
from . import download
from . import examples
from . import features
from . import models
from . import options
from . import sources
from . import uncertainty
from . import wav_check
from .plan import Upstream
from .plan import ood_plan
from .plan import published_plan
from .sample_noise import SampleNoise
from .sample_noise import image_settings

_CITATION = """\
@inproceedings{bezirganyan2025luma,
  title     = {{LUMA}: A Benchmark Dataset for Learning from Uncertain and Multimodal Data},
  author    = {Bezirganyan, Grigor and Sellami, Sana and Berti-{\\'E}quille, Laure and Fournier, S{\\'e}bastien},
  booktitle = {Proceedings of the 48th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year      = {2025},
  note      = {arXiv:2406.09864}
}
"""

_DESCRIPTION = """\
LUMA is a multimodal benchmark for uncertainty quantification: aligned image, audio and
text examples over 50 classes (42 in-distribution, 8 out-of-distribution), with configs
that inject controlled uncertainty (sample noise, label noise, low diversity, conflict).
"""

_HOMEPAGE = "https://huggingface.co/datasets/bezirganyan/LUMA"

_LICENSE = "cc-by-sa-4.0"

# One table of pinned upstream sources; `mirror=` swaps every base for the mirror's
# folder of the same name. `{revision}` is the LUMA Hub revision (config field).
_UPSTREAM = {
    "luma": "https://huggingface.co/datasets/bezirganyan/LUMA/resolve/{revision}/",
    "cifar": "https://www.cs.toronto.edu/~kriz/",
    "splits": "https://raw.githubusercontent.com/bezirganyan/LUMA/e6c5b7e35c1753ac59bbe60a9ccc7bfaf5cd0b36/split_indices/",
    "esc50": "https://github.com/karoldvl/ESC-50/archive/",
}
_FILES = {
    "cifar10": ("cifar", "cifar-10-python.tar.gz"),
    "cifar100": ("cifar", "cifar-100-python.tar.gz"),
    "edm": ("luma", "edm_images.pickle"),
    "datalist": ("luma", "audio/datalist.csv"),
    "texts": ("luma", "text_data.tsv"),
    **{name[:-4]: ("splits", name) for name in sources.SPLIT_FILES},
}

# Published md5 digests of the pinned CIFAR tarballs (www.cs.toronto.edu/~kriz/cifar.html), checked
# before a download from the real upstream is cached. The Hub files have no published digest.
_MD5 = {"cifar10": "c58f30108f718f92721af3b95e74349a", "cifar100": "eb9058c3a382ffc7106e4002c42a8d85"}
# In `dataset_infos.json` as `datasets` records checksums (its "checksum" is a sha256 we can't compute offline).
DOWNLOAD_CHECKSUMS = {_UPSTREAM[_FILES[key][0]] + _FILES[key][1]: {"num_bytes": None, "checksum": None, "md5": digest}
                      for key, digest in _MD5.items()}

logger = datasets.logging.get_logger(__name__)

# Examples noised together: back-translation runs its models on batches of this many texts.
_NOISE_BATCH = 64

# Bump whenever generated content changes. 1.0.0: first release (clean, sample_noise,
# low_diversity, label_noise_0.1-0.5, conflict).
_VERSION = datasets.Version("1.0.0")


class _CheckedConfig(datasets.BuilderConfig):
    """`LumaConfig`'s checks: the mirror path made absolute, every field validated."""

    def __post_init__(self):
        super().__post_init__()
        self.mirror = options.normalise_mirror(self.mirror)
        options.validate(self, text_params=False)  # fully validated when a builder picks it


# A LUMA variant: a dataclass (as `datasets` needs) whose fields, defaults and docstring are those
# of `config_fields.FIELDS`, where each field is described once.
LumaConfig = dataclasses.make_dataclass(
    "LumaConfig", config_fields.dataclass_fields(), bases=(_CheckedConfig,),
    namespace={"__module__": __name__, "__doc__": config_fields.docstring()})


class Luma(datasets.GeneratorBasedBuilder):
    """LUMA: aligned image, audio and text examples with configurable uncertainty."""

    VERSION = _VERSION
    BUILDER_CONFIG_CLASS = LumaConfig
    BUILDER_CONFIGS = [LumaConfig(name=name, version=_VERSION, **fields) for name, fields in options.NAMED_CONFIGS.items()]
    DEFAULT_CONFIG_NAME = "clean"
    DEFAULT_WRITER_BATCH_SIZE = 256

    def _create_builder_config(self, config_name=None, custom_features=None, **config_kwargs):
        # newer `datasets` pass their own keywords (e.g. config_id) along with the fields
        own = inspect.signature(datasets.GeneratorBasedBuilder._create_builder_config).parameters
        fields = {k: v for k, v in config_kwargs.items() if k not in own}
        options.check_field_names(LumaConfig, fields)
        fields = options.normalise_fields(fields)
        passed = {k: v for k, v in config_kwargs.items() if k in own}
        config, config_id = super()._create_builder_config(config_name, custom_features, **passed, **fields)
        for field, value in fields.items():  # datasets applies only non-None overrides
            if value is None:
                setattr(config, field, None)
        options.validate(config)  # overrides are set with setattr, after __post_init__
        if custom_features is None:  # the id of the values the config holds, not of the keywords as typed
            config_id = options.config_id(config, self.builder_configs.get(config.name))
        return config, config_id

    def _info(self):
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=examples.features_for(self.config),
            homepage=_HOMEPAGE,
            license=_LICENSE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        config = self.config
        self._forced = set()  # URLs fetched again in this build under force_redownload (`_fetch`)
        feature_cache = config.feature_cache_dir or features.default_cache_dir(self._cache_dir_root)
        models.check_available(config, feature_cache)  # before any download: names missing models and remedies
        upstream_bases = {k: v.format(revision=config.luma_revision) for k, v in _UPSTREAM.items()}
        bases = sources.source_bases(upstream_bases, config.mirror)
        if config.mirror:
            self.info.splits = None  # a mirror may hold a subset: don't hold it to the recorded sizes
        urls = {key: bases[base] + path for key, (base, path) in _FILES.items()}
        md5 = None if config.mirror else {urls[key]: digest for key, digest in _MD5.items()}
        files = dict(zip(urls, self._fetch(dl_manager, list(urls.values()), md5)))
        self.info.download_checksums = None  # verified above (md5); `datasets`' all_checks would compare sha256
        upstream = self._read_upstream(dl_manager, files, urls)
        audio_url = lambda rows: [bases["luma"] + "audio/" + p for p in upstream.audio["path"].to_numpy()[rows]]  # noqa: E731
        plans = self._plans(upstream, dl_manager, audio_url, feature_cache)
        pool = ThreadPoolExecutor(max_workers=2)  # un-noised images are PNG-encoded while the wavs are checked
        try:
            images = {split: examples.ImageColumn(plan, upstream, None if image_settings(config).ratio else pool)
                      for split, plan in plans.items()}
            audio_noised = config.audio_noise_ratio and (config.audio_noise_train or config.audio_noise_test)
            esc50 = self._esc50_files(dl_manager, bases["esc50"]) if audio_noised else ()  # only when a split is noised
            stored = self._stored_audio(dl_manager, {split: audio_url(plan.audio_rows) for split, plan in plans.items()}, bases["luma"])
            fetch_options = self._download_options(dl_manager)
            planned = {split: examples.plan_examples(plan, upstream, stored[split], config) for split, plan in plans.items()}
            generators = [
                datasets.SplitGenerator(name=split, gen_kwargs={
                    "blocks": _blocks(planned[split], images[split]),
                    "split": split, "esc50_files": esc50, "fetch_options": fetch_options})
                for split, plan in plans.items()
            ]
            for generator in generators:  # the split's total: its progress bar shows the time left (from a mirror too)
                generator.split_info.num_examples = len(planned[generator.name])
            return generators
        finally:
            pool.shutdown(cancel_futures=True)  # a bad wav stops the encoding

    def _plans(self, upstream, dl_manager, audio_url, cache):
        """The rows of each split, after diversity sampling, label noise and conflict. Features are
        cached by content in `cache` (under the builder's cache root unless feature_cache_dir is set,
        so a fresh cache_dir computes them again)."""
        config = self.config
        feature_source = uncertainty.FeatureSource(
            config, upstream, lambda rows: self._fetch(dl_manager, audio_url(rows)), self._decode_wav, cache)
        plans = {
            "train": (uncertainty.diversity_train_plan(upstream, config, feature_source) if options.uses_diversity(config)
                      else published_plan(upstream, "train", config.seed)),
            "test": published_plan(upstream, "test", config.seed),
            "ood": ood_plan(upstream, config.seed),
        }
        if config.label_noise:
            uncertainty.add_label_noise([plans["train"], plans["test"]], config, feature_source)
        if config.conflict_ratio:
            uncertainty.add_conflict(plans["test"], config)
        return plans

    def _fetch(self, dl_manager, urls, md5=None):
        """Local paths of many files (same order): a local mirror's own files, read in place (the
        download manager's bookkeeping costs ~4 s per 29,000 local paths), or copies in the download
        cache fetched by `luma_noise.download` (rate limits, resume, token), also when streaming.
        md5: optional {url: hex digest} checked before a fetched file is cached. With
        force_redownload, each file is fetched again once per build (`_forced`), not once per step
        that reads it (feature extraction, then the stored clips)."""
        if self._local_mirror():
            missing = [url for url in urls if not os.path.isfile(url)]
            if missing:
                raise FileNotFoundError(f"{len(missing)} file(s) of the mirror are missing, e.g. {missing[0]}")
            return list(urls)
        options = self._download_options(dl_manager)
        if options.force:
            fresh = [url for url in dict.fromkeys(urls) if url not in self._forced]
            download.download(fresh, options, md5)
            self._forced.update(fresh)
            options = dataclasses.replace(options, force=False)  # the rest were fetched earlier in this build
        return download.download(urls, options, md5)

    def _local_mirror(self) -> bool:
        return bool(self.config.mirror) and not self.config.mirror.startswith(("http://", "https://"))

    def _download_options(self, dl_manager):
        return download.Options.from_download_config(dl_manager.download_config, self._cache_downloaded_dir)

    def _stored_audio(self, dl_manager, urls, base):
        """{split: the wav file each example stores}: local paths, every file checked whole before
        anything is written; when streaming over http(s), the URLs (fetched and checked block by
        block in `_generate_examples`, never cached)."""
        every = list(dict.fromkeys(url for split_urls in urls.values() for url in split_urls))
        if isinstance(dl_manager, datasets.StreamingDownloadManager) and every and every[0].startswith(("http://", "https://")):
            if len(every) >= download.ANNOUNCE_AT:
                logger.warning(download.streaming_note(len(every), every[0]))
            return urls
        # a local mirror's wavs are read in place; missing ones are named with the damaged ones below
        paths = dict(zip(every, every if self._local_mirror() else self._fetch(dl_manager, every)))
        bad = [(url, path, problem) for url, path in paths.items() if (problem := wav_check.file_problem(path))]
        if bad:
            options = self._download_options(dl_manager)
            raise download.UnreadableFileError(_bad_wavs_message(
                [download.unreadable(url[len(base):], path, url, options, problem) for url, path, problem in bad]))
        return {split: [paths[url] for url in split_urls] for split, split_urls in urls.items()}

    def _decode_wav(self, path):
        """(float32 mono samples, sample rate) of one wav file, for feature extraction; a damaged
        file is named."""
        with open(path, "rb") as f:
            data = f.read()
        problem = wav_check.bytes_problem(data)
        if problem:
            raise download.UnreadableFileError(f"{path} cannot be read as a wav file ({problem})")
        return audio.decode_wav(data)

    def _esc50_files(self, dl_manager, base):
        """ESC-50's wavs, extracted by `datasets` beside its downloads (`dl_manager.extract`).

        The zip is downloaded whole even when streaming: reading a zip needs random access,
        which GitHub's generated archives (no Content-Length, no ranges) do not offer.
        """
        archive = self._fetch(dl_manager, [base + "master.zip"])[0]
        if isinstance(dl_manager, datasets.StreamingDownloadManager):  # extract the local copy
            dl_manager = datasets.DownloadManager(dataset_name=self.dataset_name, download_config=dl_manager.download_config)
        with download.readable("esc50/master.zip", archive, base + "master.zip", self._download_options(dl_manager)):
            return tuple(map(str, audio.esc50_wavs(dl_manager.extract(archive))))

    def _read_upstream(self, dl_manager, files, urls):
        """The upstream tables. A file that cannot be read is named with its URL and, when it is a
        downloaded copy, removed from the download cache so the next call fetches it again."""
        options = self._download_options(dl_manager)

        def readable(key):
            return download.readable("/".join(_FILES[key]), files[key], urls[key], options)

        def cifar(key, archive):
            with readable(key):
                return sources.read_cifar(sources.tar_members(files[key]), archive)

        with ThreadPoolExecutor(max_workers=2) as pool:  # zlib releases the GIL: the tarballs decompress meanwhile
            cifar10 = pool.submit(cifar, "cifar10", "cifar-10-python.tar.gz")
            cifar100 = pool.submit(cifar, "cifar100", "cifar-100-python.tar.gz")
            with readable("edm"), open(files["edm"], "rb") as f:
                edm = sources.read_edm(f)
            with readable("datalist"), open(files["datalist"], "rb") as f:
                datalist = sources.read_datalist(f)
            with readable("texts"), open(files["texts"], "rb") as f:
                texts = sources.read_texts(f)
            cifar10, cifar100 = cifar10.result(), cifar100.result()
        image_train = sources.image_train_frame(cifar10, cifar100, edm)
        image_test = sources.image_test_frame(cifar10, cifar100)
        sizes = {"image_train_clean": len(image_train.labels), "image_test": len(image_test.labels),
                 "audio": len(datalist), "text": len(texts)}
        splits = {}
        for name in sources.SPLIT_FILES:
            stem = name[:-4]
            with readable(stem), open(files[stem], "rb") as f:
                splits[stem] = sources.read_split(f, name, sizes.get(stem) or sizes[stem.split("_")[0]])
        return Upstream(image_train, image_test, datalist, texts, splits)

    def _generate_examples(self, blocks, split, esc50_files, fetch_options):
        """Examples of `blocks` (packed lists of planned examples, the shards `datasets` distributes).

        The sample noise is built once per process and config (`_sample_noise`), not per shard.
        Examples are noised in batches of _NOISE_BATCH within a block, so batches are the same
        prepared, streaming and with any num_proc.
        """
        noise = _sample_noise(self.config, esc50_files)

        def finish(block):  # in a background thread, while `datasets` encodes and writes the block before
            block = _unpack(block)
            audio_bytes = _read_audio([example["audio_file"] for example in block], fetch_options)
            return [pair for start in range(0, len(block), _NOISE_BATCH)
                    for pair in examples.finish_batch(block[start:start + _NOISE_BATCH],
                                                      audio_bytes[start:start + _NOISE_BATCH], split, noise)]

        for finished in background.ahead(finish, blocks):
            yield from finished


# Examples per shard (block): noise objects live for a whole block, and `datasets` splits the
# blocks between num_proc jobs, DataLoader workers and nodes. At least _MIN_SHARDS per split.
_SHARD_EXAMPLES = 4 * _NOISE_BATCH
_MIN_SHARDS = 8
_NOISE_CACHE = {}  # {process id: (config key, SampleNoise)}: models and dictionaries load once per process


def _blocks(planned: list, images) -> list:
    """`planned` cut into consecutive blocks of at most _SHARD_EXAMPLES (fewer when the split is
    small), each given its images (`images[start:end]`, an `examples.ImageColumn`: a block is
    packed as soon as its images are encoded) and packed as one pickle (`_unpack`): `datasets`
    hands the blocks to num_proc workers through dill, which pickles lists of dicts in pure
    Python (1.1 CPU s for clean's train split) but a bytes object as one copy. The pickles are
    made here and read by this package only."""
    size = max(1, min(_SHARD_EXAMPLES, math.ceil(len(planned) / _MIN_SHARDS)))
    blocks = []
    for start in range(0, len(planned), size):
        block = planned[start:start + size]
        for example, pixels_or_png in zip(block, images[start:start + size]):
            example["image"] = pixels_or_png
        blocks.append(pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL))
    return blocks


def _unpack(block: bytes) -> list:
    """The planned examples of a block made by `_blocks`."""
    return pickle.loads(block)


def _sample_noise(config, esc50_files):
    """`SampleNoise.from_config`, built once per process and config (every shard reuses it).

    Kept per process id: a forked worker builds its own and leaves its parent's alone (their
    models' thread pools don't survive the fork; even deleting them there can hang)."""
    key = (repr(config), tuple(esc50_files))
    cached = _NOISE_CACHE.get(os.getpid())
    if cached is None or cached[0] != key:
        _NOISE_CACHE[os.getpid()] = (key, SampleNoise.from_config(config, esc50_files))
    return _NOISE_CACHE[os.getpid()][1]


def _read_audio(files: list, fetch_options) -> list:
    """The bytes of a block's wav files: local files (checked before generation), or fetched
    over http(s) when streaming, each checked whole here (the error names the file and URL)."""
    if not files or not files[0].startswith(("http://", "https://")):
        return [_read_file(path) for path in files]
    contents = download.fetch_bytes(files, fetch_options)
    bad = [(url, problem) for url, data in zip(files, contents) if (problem := wav_check.bytes_problem(data))]
    if bad:
        raise download.UnreadableFileError(_bad_wavs_message(
            [download.UnreadableFileError(f"{url} cannot be read ({problem})") for url, problem in bad]))
    return contents


def _read_file(path: str) -> bytes:
    """A file's bytes in one unbuffered read (half the time of `Path.read_bytes` for a small wav);
    `io.open`, as `datasets` replaces this module's `open` with its streaming one."""
    with io.open(path, "rb", buffering=0) as f:
        return f.readall()


def _bad_wavs_message(errors: list) -> str:
    shown = "\n".join(f"  {err}" for err in errors[:10])
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    return f"{len(errors)} wav file(s) this config stores are damaged or missing (nothing was written):\n{shown}{more}"
