"""Deep-feature models are resolved before any source is read: a config that needs a missing
feature model fails at once, naming the field, the model id and what to do."""

import numpy as np
import pytest

from tests.support.helpers import load
from luma_noise.variants.deep_features import FeatureCache
from luma_noise.required_models import ModelNotAvailableError, check_available, needed_feature_models


def _no_sources(monkeypatch):
    import luma_noise.builder

    def no_sources(*args, **kwargs):
        raise AssertionError("sources were read before the missing models were reported")

    monkeypatch.setattr(luma_noise.builder.sources, "source_bases", no_sources)


def test_missing_feature_models_fail_before_any_source_is_read(mirror, tmp_path, monkeypatch):
    _no_sources(monkeypatch)
    with pytest.raises(ModelNotAvailableError) as error:
        load("label_noise_0.3", mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"))
    message = str(error.value)
    for needed in ("3 model(s)", "image_feature_model='microsoft/resnet-18'", "audio_feature_model=",
                   "text_feature_model='bert-base-uncased'", "HF_HUB_OFFLINE", "*_feature_model fields"):
        assert needed in message
    with pytest.raises(ModelNotAvailableError, match=r"1 model\(s\)[^\n]*\n  - text_feature_model="):
        load("label_noise_0.3", label_noise_modality="text", mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"))


class _Config:
    text_noise_ratio = 0.0
    text_noises = ()
    label_noise, label_noise_modality, conflict_ratio = 0.0, "all", 0.0
    image_compactness, audio_compactness, text_compactness = None, 10.0, None
    image_feature_model, audio_feature_model, text_feature_model = "no/image", "no/audio", "no/text"
    image_feature_revision = audio_feature_revision = text_feature_revision = None


def test_only_the_models_the_config_uses_are_needed_and_cached_rows_let_a_missing_one_pass(tmp_path):
    config = _Config()
    assert [m for m, _, _ in needed_feature_models(config)] == ["audio"]  # diversity of audio only
    config.label_noise, config.label_noise_modality = 0.2, "image"
    assert [m for m, _, _ in needed_feature_models(config)] == ["image", "audio"]
    with pytest.raises(ModelNotAvailableError, match="image_feature_model='no/image'.*\n.*audio_feature_model='no/audio'"):
        check_available(config, tmp_path)
    FeatureCache(tmp_path, "audio", "no/audio", None).write([bytes(16)], np.zeros((1, 4), np.float32))
    with pytest.raises(ModelNotAvailableError, match=r"1 model\(s\)[^\n]*\n  - image_feature_model="):
        check_available(config, tmp_path)  # audio rows are cached: the build may not need the model
