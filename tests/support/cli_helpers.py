"""Running the `luma` command in-process for tests."""

import contextlib
import io

from luma_noise.cli import main

TEXT_NOISES_WITHOUT_MODELS = '["KeyboardNoise","SpellingNoise","OCRNoise"]'  # no back-translation, no WordNet


def luma(*argv) -> tuple:
    """(exit status, stdout, stderr) of `luma ARGV...` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def model_sets(models: dict, feature_cache: str) -> list:
    """`--set` arguments pointing the feature models at tiny local ones (luma_noise/fixtures/models.py)."""
    sets = [f"{m}_feature_model={path}" for m, path in models.items()] + [f"feature_cache_dir={feature_cache}"]
    return [arg for item in sets for arg in ("--set", item)]
