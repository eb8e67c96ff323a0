"""Every config field is described once (`luma_noise.config_fields`), and everything that names,
checks or documents a field follows that description: the config class, validation, help, the
card, the export name, the report's variant name and the fields a run records."""

import contextlib
import dataclasses
import io

import pytest

from luma_noise import config_fields, options
from luma_noise.baselines import runs
from luma_noise.builder import LumaConfig
from luma_noise.noise.image import IMAGE_CORRUPTIONS
from luma_noise.variant import Variant

# (config, fields as given, is it the named config itself?)
SAME_OR_NOT = [
    ("label_noise_0.3", {"image_feature_model": "/models/resnet-18"}, True),  # provenance: another address
    ("clean", {"luma_revision": "v1.0"}, True),
    ("clean", {"text_feature_revision": "abc123", "feature_revision": "r1"}, True),
    ("clean", {"mirror": "/m", "feature_cache_dir": "/f"}, True),  # location
    ("clean", {"seed": 42}, True),  # the default, given explicitly
    ("low_diversity", {"image_compactness": 20.0}, True),  # the named config's own value
    ("sample_noise", {"image_corruptions": list(IMAGE_CORRUPTIONS), "text_noise_ratio": 1.0}, True),
    ("clean", {"seed": 7}, False),
    ("low_diversity", {"image_compactness": None}, False),
    ("sample_noise", {"audio_noise_ratio": 0.0, "text_noise_ratio": 0.0}, False),
    ("label_noise_0.3", {"label_noise": 0.3, "conflict_ratio": 0.1, "luma_revision": "v1.0"}, False),
]


@pytest.mark.parametrize("config, fields, same", SAME_OR_NOT)
def test_export_and_report_tell_variants_apart_alike(config, fields, same):
    """The export name and the report's variant name come from one identity: a provenance or
    location field, or a field at the named config's value, makes no other variant in either."""
    assert (Variant(config, fields).export_name() == config) is same
    assert (runs.variant_of(config, fields) == config) is same


def test_same_variant_same_names():
    """Two requests of one variant get one export name and one report name; different ones differ."""
    pairs = [({"seed": 7, "luma_revision": "v2"}, {"seed": 7}),
             ({"seed": 7, "image_feature_model": "/m/resnet"}, {"seed": 7, "image_noise_ratio": 0.0})]
    for a, b in pairs:
        assert Variant("clean", a).export_name() == Variant("clean", b).export_name()
        assert runs.variant_of("clean", a) == runs.variant_of("clean", b) == "clean{seed=7}"
    assert Variant("clean", {"seed": 7}).export_name() != Variant("clean", {"seed": 8}).export_name()


@pytest.mark.filterwarnings("ignore:feature_revision is deprecated")
@pytest.mark.parametrize("config, fields, same", SAME_OR_NOT)
def test_a_run_records_the_fields_its_variant_is_named_from(config, fields, same):
    """`train` records the resolved fields that differ from the named config; the report names
    the run's variant from them as the export names the request."""
    from luma_noise.baselines.train import _differing_fields

    fields = {k: v for k, v in fields.items() if k != "mirror"}  # a mirror must exist; it is recorded apart
    recorded = _differing_fields(config, fields, None, None)
    assert runs.variant_of(config, recorded) == runs.variant_of(config, fields)


def test_the_config_class_is_the_description():
    got = [(f.name, f.type, f.default) for f in dataclasses.fields(LumaConfig) if f.name not in options._BUILDER_FIELDS]
    assert got == [(f.name, f.type, f.default) for f in config_fields.FIELDS]
    assert {f.kind for f in config_fields.FIELDS} == set(config_fields.KINDS)
    assert all(f.doc and f.rule.accepts for f in config_fields.FIELDS)
    assert options.NONE_ALLOWED == {f.name for f in config_fields.FIELDS if f.none}
    for field in config_fields.FIELDS:  # every default is accepted by its own rule
        assert field.problems(field.default) == [], field.name


@pytest.mark.parametrize("field", [f for f in config_fields.FIELDS if type(f.rule) is config_fields.Rule],
                         ids=lambda f: f.name)
def test_errors_say_what_the_help_says(field):
    """A bad value's message states the accepted values in the words `luma configs` prints."""
    from luma_noise.cli import main

    config = LumaConfig(name="probe")
    setattr(config, field.name, object())
    with pytest.raises(options.ConfigError) as err:
        options.validate(config, text_params=False)
    assert field.rule.accepts in err.value.problems[0] and err.value.problems[0].startswith(f"{field.name}=<object")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["configs"])
    assert f"\n  {field.name}\n      default: " in out.getvalue()
    assert f"accepts: {field.accepts()}\n" in out.getvalue()


def test_the_card_table_has_every_field_with_its_kind():
    from luma_noise.card import fields_table

    table = fields_table()
    for field in config_fields.FIELDS:
        row = next(line for line in table.splitlines() if f"`{field.name}`" in line.split(" | ")[0])
        assert f"| {field.kind} | {field.meaning()} |" in row


def test_sweep_names_every_bad_value_text_noise_parameters_included_before_training(tmp_path, monkeypatch):
    from luma_noise.baselines import sweep, train

    calls = []
    monkeypatch.setattr(train, "run_training", lambda *a, **k: calls.append(a))
    bad = {"seed": -1, "text_noise_params": {"KeyboardNoise": {"nope": 1}}}
    with pytest.raises(ValueError) as err:
        sweep.run_sweep(tmp_path / "runs", ["clean", "conflict"], [42], bad, show_progress=False)
    for config in ("clean", "conflict"):
        assert f"{config}: seed=-1: expected an integer" in str(err.value)
        assert f"{config}: text_noise_params: KeyboardNoise: nlpaug's KeyboardAug has no parameter 'nope'" in str(err.value)
    assert calls == [] and not (tmp_path / "runs").exists()


def test_the_report_reads_a_run_given_at_defaults_or_other_sources_as_the_named_config(tmp_path):
    """End to end through `load_runs`: results.json files whose fields are the defaults or name
    other sources are one variant with the plain run, as `luma export` names them."""
    import json

    row = {"method": "mcd", "modality": "image", "accuracy": 0.5, "aleatoric": 1.0, "epistemic": 0.5, "ood_auroc": 0.5}
    given = {"a": {}, "b": {"seed": 42, "image_feature_model": "/models/resnet-18"}, "c": {"luma_revision": "v1.0"}}
    for seed, (folder, fields) in enumerate(given.items()):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps(
            {"config": "label_noise_0.3", "fields": fields, "results": [{**row, "seed": seed}]}))
        assert Variant("label_noise_0.3", fields).export_name() == "label_noise_0.3"
    frame = runs.load_runs([tmp_path])
    assert frame.variant.tolist() == ["label_noise_0.3"] * 3
