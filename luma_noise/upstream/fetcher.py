"""Where a build's files come from: the upstream (or a mirror), the download cache, or the network.

One `Fetcher` per build, made in `_split_generators` and handed to whatever reads files (the
upstream tables, the feature source, the stored-wav check, ESC-50): a local mirror's files are
read in place; other files are fetched into the download cache by `luma_noise.upstream.download` (rate
limits, resume, token, md5 checks), once per build also under force_redownload; a file that
cannot be read is named with its URL and, when it is a downloaded copy, evicted from the cache so
the next build fetches it again. Generation (in `num_proc` workers too) reads the stored wavs
with `read_wavs`, from the paths or, when streaming over http(s), the URLs the fetcher planned.
"""

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import datasets

from . import download
from . import sources
from . import wav_check
from ..noise.audio import decode_wav
from ..noise.audio import esc50_wavs
from ..plan import Upstream

logger = datasets.logging.get_logger(__name__)


class Fetcher:
    """The files of one build. bases: {source name: base URL or mirror folder} (`_UPSTREAM`'s
    keys, resolved); mirror: the config's mirror (None: the real upstream); cache_dir: the
    builder's default download cache; dataset_name: the builder's, for ESC-50's extraction."""

    def __init__(self, dl_manager, bases: dict, mirror: Optional[str], cache_dir: str, dataset_name: str):
        self.dl_manager, self.bases, self.dataset_name = dl_manager, bases, dataset_name
        self.local_mirror = bool(mirror) and not mirror.startswith(("http://", "https://"))
        self.streaming = isinstance(dl_manager, datasets.StreamingDownloadManager)
        self.options = download.Options.from_download_config(dl_manager.download_config, cache_dir)
        self._paths = {}  # {url: local path} of every file fetched in this build
        self._checked = set()  # local wav files already read whole and checked in this build (`read_wav`)

    def fetch(self, urls: list, md5: Optional[dict] = None) -> list:
        """Local paths of many files (same order): a local mirror's own files, read in place (the
        download manager's bookkeeping costs ~4 s per 29,000 local paths), or copies in the download
        cache fetched by `luma_noise.upstream.download`, also when streaming. md5: optional {url: hex digest}
        checked before a fetched file is cached. Each file is fetched once per build (with
        force_redownload, fetched again once, not once per step that reads it)."""
        if self.local_mirror:
            missing = [url for url in urls if not os.path.isfile(url)]
            if missing:
                raise FileNotFoundError(f"{len(missing)} file(s) of the mirror are missing, e.g. {missing[0]}")
            return list(urls)
        new = [url for url in dict.fromkeys(urls) if url not in self._paths]
        self._paths.update(zip(new, download.download(new, self.options, md5)))
        return [self._paths[url] for url in urls]

    def read_upstream(self, files: dict, md5: dict) -> Upstream:
        """The upstream tables. files: {key: (source name, path under its base)}, the split files'
        keys being their stems; md5: {key: digest} checked on download. A file that cannot be read
        is named with its URL and, when it is a downloaded copy, evicted from the download cache."""
        urls = {key: self.bases[base] + path for key, (base, path) in files.items()}
        paths = dict(zip(urls, self.fetch(list(urls.values()), {urls[key]: digest for key, digest in md5.items()})))

        def readable(key):
            return download.readable("/".join(files[key]), paths[key], urls[key], self.options)

        def cifar(key, archive):
            with readable(key):
                return sources.read_cifar(sources.tar_members(paths[key]), archive)

        with ThreadPoolExecutor(max_workers=2) as pool:  # zlib releases the GIL: the tarballs decompress meanwhile
            cifar10 = pool.submit(cifar, "cifar10", "cifar-10-python.tar.gz")
            cifar100 = pool.submit(cifar, "cifar100", "cifar-100-python.tar.gz")
            with readable("edm"), open(paths["edm"], "rb") as f:
                edm = sources.read_edm(f)
            with readable("datalist"), open(paths["datalist"], "rb") as f:
                datalist = sources.read_datalist(f)
            with readable("texts"), open(paths["texts"], "rb") as f:
                texts = sources.read_texts(f)
            cifar10, cifar100 = cifar10.result(), cifar100.result()
        image_train = sources.image_train_frame(cifar10, cifar100, edm)
        image_test = sources.image_test_frame(cifar10, cifar100)
        sizes = {"image_train_clean": len(image_train.labels), "image_test": len(image_test.labels),
                 "audio": len(datalist), "text": len(texts)}
        splits = {}
        for name in sources.SPLIT_FILES:
            stem = name[:-4]
            with readable(stem), open(paths[stem], "rb") as f:
                splits[stem] = sources.read_split(f, name, sizes.get(stem) or sizes[stem.split("_")[0]])
        return Upstream(image_train, image_test, datalist, texts, splits)

    def audio_urls(self, paths) -> list:
        """The URLs of datalist.csv's `path`s (under the luma source's audio/ folder)."""
        return [self.bases["luma"] + "audio/" + path for path in paths]

    def wav_files(self, paths) -> list:
        """Local files of datalist.csv's `path`s (fetched when not a local mirror's)."""
        return self.fetch(self.audio_urls(paths))

    def stored_wavs(self, paths_by_split: dict) -> dict:
        """{split: the wav file each example stores}, given {split: datalist `path`s}: local paths,
        every file's header checked before anything is written (all damaged or missing ones named
        at once, downloaded copies evicted); when streaming over http(s), the URLs (fetched and
        checked block by block in `read_wavs`, never cached)."""
        urls = {split: self.audio_urls(paths) for split, paths in paths_by_split.items()}
        every = list(dict.fromkeys(url for split_urls in urls.values() for url in split_urls))
        if self.streaming and every and every[0].startswith(("http://", "https://")):
            if len(every) >= download.ANNOUNCE_AT:
                logger.warning(download.streaming_note(len(every), every[0]))
            return urls
        # a local mirror's wavs are read in place; missing ones are named with the damaged ones below
        local = dict(zip(every, every if self.local_mirror else self.fetch(every)))
        bad = [(url, path, problem) for url, path in local.items()
               if path not in self._checked and (problem := wav_check.file_problem(path))]
        if bad:
            base = self.bases["luma"]
            raise download.UnreadableFileError(bad_wavs_message(
                [download.unreadable(url[len(base):], path, url, self.options, problem) for url, path, problem in bad]))
        return {split: [local[url] for url in split_urls] for split, split_urls in urls.items()}

    def read_wav(self, path: str) -> bytes:
        """The bytes of a fetched wav file, checked whole (a damaged file is named); the stored-wav
        check (`stored_wavs`) does not read its header again."""
        data = read_file(path)
        _check_wav_bytes(path, data)
        self._checked.add(path)
        return data

    @staticmethod
    def decoded_wav(path: str):
        """(float32 mono samples, sample rate) of a fetched wav file (`decode_wav_file`)."""
        return decode_wav_file(path)

    def esc50_files(self) -> tuple:
        """ESC-50's wavs, extracted by `datasets` beside its downloads (`dl_manager.extract`).

        The zip is downloaded whole even when streaming: reading a zip needs random access,
        which GitHub's generated archives (no Content-Length, no ranges) do not offer.
        """
        url = self.bases["esc50"] + "master.zip"
        archive = self.fetch([url])[0]
        dl_manager = self.dl_manager
        if self.streaming:  # extract the local copy
            dl_manager = datasets.DownloadManager(dataset_name=self.dataset_name, download_config=dl_manager.download_config)
        with download.readable("esc50/master.zip", archive, url, self.options):
            return tuple(map(str, esc50_wavs(dl_manager.extract(archive))))


def decode_wav_file(path: str):
    """(float32 mono samples, sample rate) of one wav file, for feature extraction; a damaged
    file is named."""
    data = read_file(path)
    _check_wav_bytes(path, data)
    return decode_wav(data)


def _check_wav_bytes(path: str, data: bytes) -> None:
    problem = wav_check.bytes_problem(data)
    if problem:
        raise download.UnreadableFileError(f"{path} cannot be read as a wav file ({problem})")


def read_wavs(files: list, options: download.Options) -> list:
    """The bytes of a block's wav files: local files (checked before generation), or fetched
    over http(s) when streaming, each checked whole here (the error names the file and URL)."""
    if not files or not files[0].startswith(("http://", "https://")):
        return [read_file(path) for path in files]
    contents = download.fetch_bytes(files, options)
    bad = [(url, problem) for url, data in zip(files, contents) if (problem := wav_check.bytes_problem(data))]
    if bad:
        raise download.UnreadableFileError(bad_wavs_message(
            [download.UnreadableFileError(f"{url} cannot be read ({problem})") for url, problem in bad]))
    return contents


def read_file(path: str) -> bytes:
    """A file's bytes in one unbuffered read (half the time of `Path.read_bytes` for a small wav);
    `io.open`, as `datasets` replaces the loading script's modules' `open` with its streaming one."""
    with io.open(path, "rb", buffering=0) as f:
        return f.readall()


def bad_wavs_message(errors: list) -> str:
    shown = "\n".join(f"  {err}" for err in errors[:10])
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    return f"{len(errors)} wav file(s) this config stores are damaged or missing (nothing was written):\n{shown}{more}"
