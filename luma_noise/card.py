"""The dataset card's machine-readable parts, generated from the builder so they never drift.

`python -m luma_noise.card` rewrites `dataset_infos.json` (at the top level, for the script and
the Hub, and inside the package, where the packaged builder reads its recorded split sizes) and
the YAML header of `README.md`; a test fails when any is out of date.
"""

import json
import re
from pathlib import Path


from .builder import DOWNLOAD_CHECKSUMS

# Split sizes on the real upstream data; every config keeps the clean split's sizes.
REAL_SPLIT_SIZES = {"train": 21000, "test": 4200, "ood": 3859}
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_INFOS = Path(__file__).resolve().parent / "dataset_infos.json"


def dataset_infos(builder_cls) -> dict:
    """{config name: DatasetInfo as a JSON dict} with the real upstream split sizes."""
    infos = {}
    for config in builder_cls.BUILDER_CONFIGS:
        info = builder_cls(config_name=config.name).info
        infos[config.name] = {
            "description": info.description,
            "citation": info.citation,
            "homepage": info.homepage,
            "license": info.license,
            "features": info.features.to_dict(),
            "builder_name": "luma",
            "config_name": config.name,
            "version": {"version_str": str(config.version)},
            "splits": {name: {"name": name, "num_examples": n, "dataset_name": "luma"} for name, n in REAL_SPLIT_SIZES.items()},
            "download_checksums": DOWNLOAD_CHECKSUMS,  # the published md5 of the pinned CIFAR tarballs
        }
    return infos


def yaml_header(builder_cls) -> str:
    """The card's YAML header: license, tasks, and per config its features and splits
    (`huggingface_hub.DatasetCardData`, filled by `datasets`' `DatasetInfosDict`)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    infos = DatasetInfosDict()
    for config in builder_cls.BUILDER_CONFIGS:
        splits = SplitDict({n: SplitInfo(name=n, num_examples=k) for n, k in REAL_SPLIT_SIZES.items()})
        infos[config.name] = DatasetInfo(features=builder_cls(config_name=config.name).info.features, splits=splits)
    card = DatasetCardData(
        license="cc-by-sa-4.0",
        language=["en"],
        pretty_name="LUMA",
        size_categories=["10K<n<100K"],
        task_categories=["image-classification", "audio-classification", "text-classification"],
        tags=["multimodal", "uncertainty-quantification", "out-of-distribution-detection", "label-noise"],
    )
    infos.to_dataset_card_data(card)
    return "---\n" + card.to_yaml() + "\n---\n"


def write(builder_cls, root: Path = ROOT) -> None:
    """Rewrite dataset_infos.json (under `root` and in the package) and README.md's YAML header."""
    infos = json.dumps(dataset_infos(builder_cls), indent=2) + "\n"
    for path in (root / "dataset_infos.json", PACKAGE_INFOS):
        path.write_text(infos)
    readme = root / "README.md"
    text = readme.read_text() if readme.exists() else ""
    body = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    readme.write_text(yaml_header(builder_cls) + body)


if __name__ == "__main__":
    from .loader import builder_class

    write(builder_class())
