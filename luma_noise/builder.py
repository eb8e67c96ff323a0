"""The LUMA dataset builder: its config class, the pinned upstream sources and the builder.

It lives in the package so that the same class serves the loading script `luma.py` (which
subclasses it, for `load_dataset` on `datasets` 3.x and the Hub) and `luma_noise.load` on any
`datasets` release, from a checkout or an installed wheel. The heavy lifting is in the other
`luma_noise` modules, one step of the pipeline each: the upstream (`fetcher`, `sources`,
`download`), the plans (`plan`), the variants (`variants/`, with `feature_source`), the sample noise
(`sample_noise` with `image`, `audio`, `text`) and the examples (`examples`).
"""

import dataclasses
import inspect

import datasets

from . import config_fields
from . import examples
from .variants import deep_features
from . import options
from . import required_models
from .noise import sample_noise
from .upstream import sources
from . import variants
from .variants.feature_source import FeatureSource
from .upstream.fetcher import Fetcher

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
        feature_cache = config.feature_cache_dir or deep_features.default_cache_dir(self._cache_dir_root)
        required_models.check_available(config, feature_cache)  # before any download: names missing models and remedies
        if config.mirror:
            self.info.splits = None  # a mirror may hold a subset: don't hold it to the recorded sizes
        bases = sources.source_bases({k: v.format(revision=config.luma_revision) for k, v in _UPSTREAM.items()}, config.mirror)
        fetcher = Fetcher(dl_manager, bases, config.mirror, self._cache_downloaded_dir, self.dataset_name)
        upstream = fetcher.read_upstream(_FILES, {} if config.mirror else _MD5)
        self.info.download_checksums = None  # verified above (md5); `datasets`' all_checks would compare sha256
        # deep features are cached by content under the builder's cache root unless feature_cache_dir is set
        plans = variants.plan_splits(upstream, config, FeatureSource(config, upstream, fetcher, feature_cache))
        esc50 = fetcher.esc50_files() if sample_noise.noises_audio(config) else ()  # only when a split is noised
        generators = []
        for split, (blocks, size) in examples.pack_splits(plans, upstream, fetcher, config).items():
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={
                "blocks": blocks, "split": split, "esc50_files": esc50, "fetch_options": fetcher.options}))
            generators[-1].split_info.num_examples = size  # its progress bar shows the time left (from a mirror too)
        return generators

    def _generate_examples(self, blocks, split, esc50_files, fetch_options):
        """Examples of `blocks` (packed planned examples, the shards `datasets` distributes); the
        sample noise is built once per process and config (`sample_noise.for_process`), not per shard."""
        noise = sample_noise.for_process(self.config, esc50_files)
        yield from examples.generate(blocks, split, noise, fetch_options)
