"""Fixtures of the baselines' end-to-end tests: the clean config of the fixture mirror, prepared and streaming."""

import pytest

from tests.support.helpers import load


@pytest.fixture(scope="session")
def luma_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("baselines-cache"))


@pytest.fixture(scope="session")
def clean(mirror, luma_cache):
    """The clean config of the fixture mirror, prepared."""
    return load("clean", mirror=str(mirror[0]), cache_dir=luma_cache)


@pytest.fixture(scope="session")
def clean_streaming(mirror, luma_cache):
    return load("clean", mirror=str(mirror[0]), cache_dir=luma_cache, streaming=True)
