"""Where a `transformers` checkpoint lives: a local folder, or its snapshot in the Hugging Face
cache (as `transformers` resolves it, honouring HF_HUB_OFFLINE)."""

import os
from pathlib import Path

# Files a checkpoint needs besides config.json: one of these weight files.
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def model_dir(model_id: str, revision: str | None = None) -> Path:
    """The folder holding `model_id`'s config.json: the local folder itself, or its snapshot (at
    `revision`) in the Hugging Face cache (downloading config.json unless offline). OSError when
    neither works."""
    if os.path.isdir(model_id):
        if not os.path.isfile(os.path.join(model_id, "config.json")):
            raise FileNotFoundError(f"{model_id} is a folder without config.json")
        return Path(model_id)
    from transformers.utils import cached_file

    config = cached_file(model_id, "config.json", revision=revision)
    if hub_offline():  # config.json alone is not a model: the weights must be cached too
        from huggingface_hub import try_to_load_from_cache

        if not any(isinstance(try_to_load_from_cache(model_id, name, revision=revision), str) for name in _WEIGHTS):
            raise FileNotFoundError(f"{model_id}: config.json is cached but no weights ({', '.join(_WEIGHTS[:2])})")
    return Path(config).parent
