"""Test setup: offline, a temporary cache, a miniature upstream mirror, no traffic beyond loopback."""

import functools
import http.server
import os
import socket
import tempfile
import threading

# Before anything imports `datasets`: offline, and every cache in a temporary folder.
_HOME = tempfile.mkdtemp(prefix="luma-tests-hf-")
os.environ.update({
    "HF_HOME": _HOME,
    "HF_DATASETS_CACHE": os.path.join(_HOME, "datasets"),
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_UPDATE_DOWNLOAD_COUNTS": "0",
    "TRANSFORMERS_OFFLINE": "1",
})

import pytest  # noqa: E402

from luma_noise.fixtures.mirror import write_mirror  # noqa: E402

_LOOPBACK = ("127.", "::1", "localhost")


def _refuse_remote(host) -> None:
    if isinstance(host, str) and not host.startswith(_LOOPBACK) and host not in ("", "0.0.0.0"):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {host!r}")


@pytest.fixture(autouse=True, scope="session")
def loopback_only():
    """Fail any connection or name lookup beyond loopback, whatever library tries it."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _refuse_remote(address[0])
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        _refuse_remote(host)
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
    yield
    socket.socket.connect, socket.getaddrinfo = real_connect, real_getaddrinfo


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    """(folder, manifest) of a miniature mirror in the exact upstream formats."""
    root = tmp_path_factory.mktemp("mirror")
    manifest = write_mirror(root)
    return root, manifest


@pytest.fixture(scope="session")
def clean(mirror, tmp_path_factory):
    """The `clean` config prepared once from the folder mirror: {split: list of examples}
    (images as arrays, audio as raw bytes; see helpers.rows). Read-only: tests share it."""
    from tests.support.helpers import built_rows

    return built_rows(mirror[0], tmp_path_factory.mktemp("clean-cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """Folder of a tiny random BERT (with its tokenizer), loaded as a Hub checkpoint would be."""
    from luma_noise.fixtures.models import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("tiny-models"))["text"]


@pytest.fixture
def cache_dir(tmp_path):
    """A fresh datasets cache for one test."""
    return str(tmp_path / "cache")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_mirror(mirror):
    """The mirror served over HTTP from 127.0.0.1 by a server this fixture starts."""
    handler = functools.partial(_QuietHandler, directory=str(mirror[0]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", mirror[1]
    server.shutdown()


@pytest.fixture
def allow_loopback_http(monkeypatch):
    """`datasets`' offline mode refuses loopback URLs too: lift it for one test. The hub
    stays offline (huggingface_hub reads its own flag) and `loopback_only` still guards."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)

