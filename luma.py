"""LUMA: a benchmark dataset for learning from uncertain and multimodal data.

Each example aligns a 32x32 image (CIFAR-10/100 or EDM-generated), a spoken class word
and an LLM-written passage about the class, over 42 in-distribution and 8
out-of-distribution classes. Named configs inject uncertainty while examples are
yielded; the noise, sampling and alignment code lives in the `luma_noise` package.
"""

import dataclasses
from typing import Optional

import datasets

import luma_noise
from luma_noise import options
from luma_noise import sources
from luma_noise.plan import Upstream
from luma_noise.plan import ood_plan
from luma_noise.plan import published_plan

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

# Bump whenever generated content changes: 1.0.0 first release (clean).
_VERSION = datasets.Version("1.0.0")


@dataclasses.dataclass
class LumaConfig(datasets.BuilderConfig):
    """A LUMA variant. Every field is checked when the config is built, before any download.

    Args:
        seed: seeds every random draw (alignment, OOD draw, noise), through generators
            derived per purpose and example.
        mirror: a local folder or http(s) base URL holding the folders luma/, cifar/,
            splits/, esc50/ in the upstream layout; None reads the real upstream.
        luma_revision: revision (branch, tag or commit) of the `bezirganyan/LUMA` Hub repository;
            `load_dataset`'s own `revision` argument is taken by `datasets`.
    """

    seed: int = 42
    mirror: Optional[str] = None
    luma_revision: str = "main"

    def __post_init__(self):
        super().__post_init__()
        options.validate(self)


class Luma(datasets.GeneratorBasedBuilder):
    """LUMA: aligned image, audio and text examples with configurable uncertainty."""

    VERSION = _VERSION
    BUILDER_CONFIG_CLASS = LumaConfig
    BUILDER_CONFIGS = [LumaConfig(name=name, version=_VERSION, **fields) for name, fields in options.NAMED_CONFIGS.items()]
    DEFAULT_CONFIG_NAME = "clean"
    DEFAULT_WRITER_BATCH_SIZE = 256

    def _create_builder_config(self, config_name=None, custom_features=None, **config_kwargs):
        options.check_field_names(LumaConfig, config_kwargs)
        config, config_id = super()._create_builder_config(config_name, custom_features, **config_kwargs)
        options.validate(config)  # overrides are set with setattr, after __post_init__
        return config, config_id

    def _info(self):
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=luma_noise.features_for(self.config),
            homepage=_HOMEPAGE,
            license=_LICENSE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        upstream_bases = {k: v.format(revision=self.config.luma_revision) for k, v in _UPSTREAM.items()}
        bases = sources.source_bases(upstream_bases, self.config.mirror)
        if self.config.mirror:
            self.info.splits = None  # a mirror may hold a subset: don't hold it to the recorded sizes
        files = dl_manager.download({key: bases[base] + path for key, (base, path) in _FILES.items()})
        upstream = self._read_upstream(dl_manager, files)
        seed = self.config.seed
        plans = {
            datasets.Split.TRAIN: published_plan(upstream, "train", seed),
            datasets.Split.TEST: published_plan(upstream, "test", seed),
            "ood": ood_plan(upstream, seed),
        }
        generators = []
        for split, plan in plans.items():
            audio_paths = upstream.audio["path"].to_numpy()[plan.audio_rows]
            audio_files = dl_manager.download([bases["luma"] + "audio/" + p for p in audio_paths])
            examples = luma_noise.examples(plan, upstream, audio_files)
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"examples": examples}))
        return generators

    def _read_upstream(self, dl_manager, files):
        cifar10 = sources.read_cifar(dl_manager.iter_archive(files["cifar10"]), "cifar-10-python.tar.gz")
        cifar100 = sources.read_cifar(dl_manager.iter_archive(files["cifar100"]), "cifar-100-python.tar.gz")
        with open(files["edm"], "rb") as f:
            edm = sources.read_edm(f)
        with open(files["datalist"], "rb") as f:
            audio = sources.read_datalist(f)
        with open(files["texts"], "rb") as f:
            text = sources.read_texts(f)
        image_train = sources.image_train_frame(cifar10, cifar100, edm)
        image_test = sources.image_test_frame(cifar10, cifar100)
        sizes = {"image_train": len(image_train.labels), "image_test": len(image_test.labels), "audio": len(audio), "text": len(text)}
        splits = {}
        for name in sources.SPLIT_FILES:
            stem = name[:-4]
            table = "image_test" if stem == "image_test" else ("image_train" if stem.startswith("image") else stem.split("_")[0])
            with open(files[stem], "rb") as f:
                splits[stem] = sources.read_split(f, name, sizes[table])
        return Upstream(image_train, image_test, audio, text, splits)

    def _generate_examples(self, examples):
        for example in examples:
            with open(example["audio_file"], "rb") as f:
                audio_bytes = f.read()
            yield example["key"], luma_noise.finish_example(example, audio_bytes)
