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
from typing import Optional

import datasets

from . import examples
from . import features
from . import image
from . import options
from . import required_models
from . import sample_noise
from . import sources
from . import text
from . import variants
from .feature_source import FeatureSource
from .fetcher import Fetcher

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


@dataclasses.dataclass
class LumaConfig(datasets.BuilderConfig):
    """A LUMA variant. Every field is checked when the config is built, before any download.

    Sources and randomness:
        seed: seeds every random draw (alignment, OOD draw, noise, sampling), through
            generators derived per purpose and example.
        mirror: a local folder or http(s) base URL holding the folders luma/, cifar/,
            splits/, esc50/ in the upstream layout; None reads the real upstream. A relative
            or `~` path is made absolute before the config id is computed.
        luma_revision: revision (branch, tag or commit) of the `bezirganyan/LUMA` Hub
            repository (`load_dataset`'s own `revision` argument belongs to `datasets`).

    Sample noise, per modality m in image, audio, text:
        m_noise_ratio: fraction of examples noised, in [0, 1]; 0 turns the modality's noise off.
        m_noise_train: noise the modality in the train split.
        m_noise_test: noise the modality in the test and ood splits.
        image_corruptions: names from `luma_noise.image.IMAGE_CORRUPTIONS`, one drawn per example.
        image_severity: 1..5, of the tables image_severity_tables selects.
        image_severity_tables: "imagenet-c" (ImageNet-C's tables, through `imagecorruptions`) or
            "cifar10-c" (CIFAR-10-C's, milder on 32x32 images, as LUMA's reference tool applies them).
        reference_effective: build the images as the reference tool effectively does, whatever
            the image fields say: each image of every split corrupted with probability 0.1,
            CIFAR-10-C tables, image_corruptions, and severity image_severity when
            image_noise_ratio > 0 (sample_noise: 4), else 1 (the reference's default config).
            Audio and text follow their fields. See docs/reference_data.md.
        audio_min_snr_db, audio_max_snr_db: SNR range (dB) of the ESC-50 background mixed in.
        text_noises: names from `luma_noise.text.TEXT_NOISES`, one drawn per example.
        text_noise_params: {noise name: {nlpaug parameter: value}} overriding the defaults; None keeps
            them. Names and parameter names are checked even when text noise is off.

    Diversity, label noise, conflict:
        image_compactness, audio_compactness, text_compactness: compactness k >= 0 of the
            diversity sampling of the train split (Eq. 1 of the paper); None keeps the
            published clean train rows.
        num_sampling: draws per class, keeping the one with the largest mean pairwise distance.
        label_noise: probability in [0, 1] that a train or test example's label is switched
            to the class whose `label_noise_neighbours` nearest samples are closest.
        label_noise_modality: "all" (distances averaged over the three modalities'
            normalised features) or one modality.
        label_noise_neighbours: nearest samples per class averaged to find the closest class.
        conflict_ratio: fraction in [0, 1] of each test class whose examples get one
            modality replaced by the same-position sample of the next class.
        image_feature_model, audio_feature_model, text_feature_model: `transformers` model
            ids (or local folders) for the deep features; None is the default checkpoint.
        image_feature_revision, audio_feature_revision, text_feature_revision: Hub revision
            (branch, tag or commit) of each modality's feature model; None is its default
            branch. (`feature_revision=` still sets all three, with a DeprecationWarning.)
        feature_cache_dir: where features are cached (default: `luma_features` under the builder's
            cache root, i.e. `load_dataset`'s cache_dir or the datasets cache).

    Keyword overrides of None are applied (`datasets` alone would drop them): e.g.
    `image_compactness=None` on `low_diversity` keeps the published image train rows.
    """

    seed: int = 42
    mirror: Optional[str] = None
    luma_revision: str = "main"
    image_noise_ratio: float = 0.0
    image_noise_train: bool = True
    image_noise_test: bool = True
    image_corruptions: tuple = image.IMAGE_CORRUPTIONS
    image_severity: int = 4
    image_severity_tables: str = "imagenet-c"
    reference_effective: bool = False
    audio_noise_ratio: float = 0.0
    audio_noise_train: bool = True
    audio_noise_test: bool = True
    audio_min_snr_db: float = 3.0
    audio_max_snr_db: float = 5.0
    text_noise_ratio: float = 0.0
    text_noise_train: bool = True
    text_noise_test: bool = True
    text_noises: tuple = text.DEFAULT_TEXT_NOISES
    text_noise_params: Optional[dict] = None
    image_compactness: Optional[float] = None
    audio_compactness: Optional[float] = None
    text_compactness: Optional[float] = None
    num_sampling: int = 10
    label_noise: float = 0.0
    label_noise_modality: str = "all"
    label_noise_neighbours: int = 5
    conflict_ratio: float = 0.0
    image_feature_model: str = features.DEFAULT_MODEL_IDS["image"]
    audio_feature_model: str = features.DEFAULT_MODEL_IDS["audio"]
    text_feature_model: str = features.DEFAULT_MODEL_IDS["text"]
    image_feature_revision: Optional[str] = None
    audio_feature_revision: Optional[str] = None
    text_feature_revision: Optional[str] = None
    feature_cache_dir: Optional[str] = None

    def __post_init__(self):
        super().__post_init__()
        self.mirror = options.normalise_mirror(self.mirror)
        options.validate(self, text_params=False)  # fully validated when a builder picks it


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
        feature_cache = config.feature_cache_dir or features.default_cache_dir(self._cache_dir_root)
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
