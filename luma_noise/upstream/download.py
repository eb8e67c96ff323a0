"""Bulk downloads of LUMA's upstream files: rate limits, resume, bounded connections, tokens.

A `clean` build fetches about 29,000 wav files from the Hub as separate `/resolve/` URLs
(up to ~135,000 for the deep-feature configs), and the Hub allows a fixed number of resolver
requests per 5-minute window (3,000 anonymous, 5,000 logged in, more with PRO;
huggingface.co/docs/hub/rate-limits). This module fetches such lists:

- into `datasets`' download folder under `datasets`' own file names (`hash_url_to_filename`),
  written to a temporary name and renamed, so a file present is complete and never fetched
  again, by any config sharing the cache; an interrupted build resumes where it stopped;
- with at most `WORKERS` connections; one GET per file, no HEAD (`datasets`' `cached_path`
  sends a HEAD per file on every call, even when cached: twice the requests);
- pausing every worker together when the server says the window is used up (`RateLimit`
  with r=0) or answers 429 (`Retry-After`, else `RateLimit`'s reset, else exponential backoff);
- with the user's Hugging Face token, sent to Hub hosts only (never to a mirror; `requests`
  drops it on the redirect to the CDN);
- telling the user once what is happening and how long it takes at the server's limit.

Written here rather than with `huggingface_hub.utils.http_backoff`: that retries each request on
its own (every worker sleeps and logs on its own 429) and refuses every URL, mirrors included,
under HF_HUB_OFFLINE; a shared pause across workers needs the loop here. Timings are seconds.

Longer than 300 lines because one client (retries, the shared rate-limit pause, resume, md5, the
token) serves both the cached downloads and streaming's in-memory fetches.
"""

import contextlib
import dataclasses
import email.utils
import hashlib
import io
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Optional
from urllib.parse import urlparse

import datasets
import requests
from datasets.utils.file_utils import hash_url_to_filename

from . import durations

WORKERS = 8  # connections at once per bulk download
TIMEOUT_S = (10.0, 30.0)  # (connect, longest silence while reading); a dead server fails within these
RETRIES = 5  # per file, for network errors, 5xx and short bodies
RATE_LIMIT_RETRIES = 10  # per file, 429 answers (each waits for the server's window)
BACKOFF_S = 1.0  # first wait after an error without Retry-After; doubles up to MAX_BACKOFF_S
MAX_BACKOFF_S = 30.0
ANNOUNCE_AT = 100  # bulk downloads of at least this many files are announced
HUB_LIMITS = {"anonymous": 3000, "free account": 5000, "PRO": 12000}  # resolver requests per window
HUB_WINDOW_S = 300
_RETRY_STATUS = (408, 500, 502, 503, 504)
_CHUNK = 1 << 20

logger = datasets.logging.get_logger(__name__)


class DownloadError(ConnectionError):
    """A file could not be fetched (its URL is in the message)."""


class UnreadableFileError(ValueError):
    """A fetched or mirrored file is not what its reader expects (its name and URL are in the message)."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Where and how to download. cache_dir: folder of the cached copies; token: a Hugging Face
    token, True/None for the configured one (`huggingface_hub.get_token()`), False for none;
    force: fetch again even when cached (`download_mode="force_redownload"`)."""

    cache_dir: str
    token: object = None
    force: bool = False

    @classmethod
    def from_download_config(cls, download_config, default_cache_dir: str) -> "Options":
        return cls(str(download_config.cache_dir or default_cache_dir), download_config.token,
                   bool(download_config.force_download))


def cached_path(url: str, options: Options) -> str:
    """Where `url`'s copy lives in the download cache (`datasets`' name for it, without ETag)."""
    return os.path.join(options.cache_dir, hash_url_to_filename(url))


def download(urls: list, options: Options, md5: Optional[dict] = None) -> list:
    """Local copies of `urls` (same order), fetching only those not in the cache.

    md5: optional {url: hex digest}; a fetched file that does not match is not cached.
    Raises DownloadError naming the URL when a file cannot be fetched after the retries.
    """
    paths = [cached_path(url, options) for url in urls]
    todo = [(url, path) for url, path in dict(zip(urls, paths)).items() if options.force or not os.path.isfile(path)]
    if not todo:
        return paths
    if datasets.config.HF_HUB_OFFLINE:  # what `datasets` itself checks before any download
        raise DownloadError(f"offline mode (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE) and {len(todo)} file(s) are "
                            f"not in the download cache {options.cache_dir}, e.g. {todo[0][0]}; unset it or use "
                            f"a local mirror folder")
    os.makedirs(options.cache_dir, exist_ok=True)
    md5 = md5 or {}
    client, start = _Client(options.token), time.monotonic()
    try:
        client.fetch_to_file(*todo[0], md5.get(todo[0][0]))  # its answer tells the server's limit
        if len(todo) >= ANNOUNCE_AT:
            logger.warning(announcement(len(todo), len(set(urls)) - len(todo), todo[0][0], client))
        _run(client, todo[1:], lambda url, path: client.fetch_to_file(url, path, md5.get(url)),
             f"Downloading {_host(todo[0][0])} files", len(todo), initial=1)
    finally:
        client.close()
    if len(todo) >= ANNOUNCE_AT:
        logger.warning(f"LUMA: downloaded {len(todo):,} files in {durations.readable(time.monotonic() - start)} "
                       f"({durations.readable(client.paused_s)} of it paused by the rate limit)")
    return paths


_STREAM_CLIENTS = {}  # {(process id, token): _Client}: streaming keeps the server's limit across blocks


def fetch_bytes(urls: list, options: Options) -> list:
    """The contents of `urls` (same order), in memory and not cached (streaming)."""
    client = _STREAM_CLIENTS.setdefault((os.getpid(), repr(options.token)), _Client(options.token))
    client.stop.clear()
    out = {}
    try:
        _run(client, [(url, None) for url in dict.fromkeys(urls)], lambda url, _: out.__setitem__(url, client.fetch(url)))
    finally:
        client.close()
    return [out[url] for url in urls]


def _run(client, jobs: list, work, desc: Optional[str] = None, total: int = 0, initial: int = 0) -> None:
    """Run work(url, path) for every job on WORKERS threads; the first failure stops the rest."""
    if not jobs:
        return
    bar = datasets.utils.tqdm(total=total, initial=initial, desc=desc, unit="file", disable=desc is None)
    with bar, ThreadPoolExecutor(min(WORKERS, len(jobs))) as pool:
        futures = [pool.submit(work, url, path) for url, path in jobs]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
                if client.paused_s > 1:
                    bar.set_postfix_str(f"rate limit: paused {client.paused_s:.0f} s so far", refresh=False)
        except BaseException:
            for future in futures:
                future.cancel()
            client.stop.set()
            raise


def _host(url: str) -> str:
    return urlparse(url).hostname or url


def expected_wait_s(requests_: int, limit: int, window_s: float, remaining: Optional[int] = None,
                    reset_s: Optional[float] = None) -> float:
    """Seconds spent waiting for windows to reopen when making `requests_` requests at `limit`
    per fixed `window_s` (transfer time not included). With the server's current `remaining`
    requests and `reset_s` seconds until its window resets; else a fresh window."""
    remaining = limit if remaining is None else remaining
    beyond = requests_ - remaining
    if beyond <= 0:
        return 0.0
    return (window_s if reset_s is None else reset_s) + (math.ceil(beyond / limit) - 1) * window_s


def announcement(todo: int, cached: int, url: str, client) -> str:
    """The one message of a bulk download: what, how long at the server's limit, how to raise it."""
    host = _host(url)
    text = (f"LUMA: downloading {todo:,} files from {host}, one request each, at most {WORKERS} at a time "
            f"({cached:,} already in the download cache are reused; an interrupted download resumes where it stopped).")
    if client.limit is None:
        return text + " The server announces no rate limit."
    limit, window_s = client.limit
    wait = expected_wait_s(todo, limit, window_s, client.remaining, client.reset_s)
    text += (f" {host} allows {limit:,} requests per {window_s:g} s to this client, so this takes about "
             f"{durations.readable(wait)} of waiting for the limit plus the transfer.")
    if _is_hub(url) and not client.has_token:
        text += (" Logging in raises the limit (`hf auth login` or the HF_TOKEN variable; "
                 + ", ".join(f"{n:,} {who}" for who, n in HUB_LIMITS.items()) + f" per {HUB_WINDOW_S // 60} min).")
    return text


def _is_hub(url: str) -> bool:
    """Whether `url` is on a Hugging Face Hub host (huggingface.co or HF_ENDPOINT's), the only hosts given the token."""
    import huggingface_hub

    host = (_host(url) or "").lower()
    hub_hosts = {"huggingface.co", (urlparse(huggingface_hub.constants.ENDPOINT).hostname or "").lower()}
    return host in hub_hosts or host.endswith(".huggingface.co")


def auth_headers(url: str, token) -> dict:
    """{"authorization": "Bearer ..."} for Hub URLs when a token is given or configured, else {}."""
    if token is False or not _is_hub(url):
        return {}
    if not isinstance(token, str):
        import huggingface_hub

        token = huggingface_hub.get_token()
    return {"authorization": f"Bearer {token}"} if token else {}


_RATELIMIT = re.compile(r'"(?P<kind>[^"]+)"\s*;\s*r\s*=\s*(?P<r>\d+)\s*;\s*t\s*=\s*(?P<t>\d+)')
_POLICY = re.compile(r"q\s*=\s*(?P<q>\d+).*?w\s*=\s*(?P<w>\d+)")


def retry_after_s(headers) -> Optional[float]:
    """Seconds from a `Retry-After` header (delay in seconds or an HTTP date), else None."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


class _Client:
    """One bulk download: a `requests` session per worker thread, and one pause shared by all of
    them, set from the server's rate-limit headers."""

    def __init__(self, token):
        self.token = token
        self.has_token = bool(auth_headers("https://huggingface.co/", token))
        self.limit = None  # (requests, window seconds) from RateLimit-Policy
        self.remaining = self.reset_s = None
        self.paused_s = 0.0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._local = threading.local()
        self._sessions = []

    def close(self):
        """Close the workers' sessions; the rate-limit state stays for the next use."""
        with self._lock:
            sessions, self._sessions, self._local = self._sessions, [], threading.local()
        for session in sessions:
            session.close()

    def fetch(self, url: str) -> bytes:
        sink = io.BytesIO()
        self._get(url, sink)
        return sink.getvalue()

    def fetch_to_file(self, url: str, path: str, md5: Optional[str] = None) -> None:
        """Fetch into `path` through a temporary file, checking `md5` before the rename."""
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.incomplete"
        try:
            with open(tmp, "w+b") as sink:
                self._get(url, sink)
                if md5 is not None:
                    sink.seek(0)
                    digest = hashlib.md5()
                    for chunk in iter(lambda: sink.read(_CHUNK), b""):
                        digest.update(chunk)
                    got = digest.hexdigest()
                    if got != md5:
                        raise DownloadError(f"{url}: md5 {got} differs from the published {md5}; the file was not "
                                            f"cached (a damaged or changed upstream file): try again later")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(self._local.session)
        return self._local.session

    def _pause(self, seconds: float) -> None:
        with self._lock:
            start = max(self._resume_at, time.monotonic())
            self.paused_s += max(0.0, time.monotonic() + seconds - start)  # wall time all workers wait
            self._resume_at = max(start, time.monotonic() + seconds)

    def _wait_turn(self) -> None:
        while True:
            with self._lock:
                delay = self._resume_at - time.monotonic()
            if delay <= 0:
                return
            if self.stop.wait(min(delay, 1.0)):
                raise DownloadError("cancelled: another file of the same download failed")

    def _note_limits(self, headers) -> Optional[float]:
        """Record the server's limit; return seconds until its window resets when none is left."""
        match = _RATELIMIT.search(headers.get("RateLimit", ""))
        if not match:
            return None
        policy = _POLICY.search(headers.get("RateLimit-Policy", ""))
        with self._lock:
            if policy:
                self.limit = (int(policy["q"]), float(policy["w"]))
            self.remaining, self.reset_s = int(match["r"]), float(match["t"])
        return float(match["t"]) if int(match["r"]) == 0 else None

    def _get(self, url: str, sink) -> None:
        """GET `url` into `sink`, retrying 429 (after the server's wait) and transient errors."""
        errors = limited = 0
        while True:
            self._wait_turn()
            sink.seek(0)
            sink.truncate()
            try:
                headers = {"accept-encoding": "identity", **auth_headers(url, self.token)}
                with self._session().get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
                    # the Hub sends its limits on the /resolve/ answer, a redirect to the CDN for most files
                    resets = [self._note_limits(answer.headers) for answer in (*response.history, response)]
                    reset_s = max((r for r in resets if r is not None), default=None)
                    if response.status_code == 429:
                        limited += 1
                        if limited > RATE_LIMIT_RETRIES:
                            raise DownloadError(f"{url}: still rate-limited (HTTP 429) after {limited} waits")
                        wait = retry_after_s(response.headers) or reset_s or _backoff(limited)
                        self._pause(wait)
                        continue
                    if response.status_code in _RETRY_STATUS:
                        raise _Transient(f"HTTP {response.status_code} {response.reason}")
                    if response.status_code >= 400:
                        raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}" + _hint(response))
                    for chunk in response.iter_content(_CHUNK):
                        sink.write(chunk)
                    expected = response.headers.get("Content-Length")
                    if expected is not None and sink.tell() != int(expected):
                        raise _Transient(f"the server sent {sink.tell():,} of {int(expected):,} bytes")
                if reset_s is not None:
                    self._pause(reset_s)  # the window is used up: ask again when it resets, not before
                return
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    _Transient) as err:
                errors += 1
                if errors > RETRIES:
                    raise DownloadError(f"could not download {url} after {errors} attempts: {err}") from err
                if self.stop.wait(_backoff(errors)):
                    raise DownloadError("cancelled: another file of the same download failed") from err


class _Transient(Exception):
    """A failed attempt worth retrying."""


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1))


def _hint(response) -> str:
    if response.status_code in (401, 403) and _is_hub(response.url):
        return " (a gated or private repository: log in with `hf auth login` or set HF_TOKEN)"
    if response.status_code == 404:
        return " (not found: check the mirror's layout or `luma_revision`)"
    return ""


def in_cache(path: str, options: Options) -> bool:
    """Whether `path` is a copy in the download cache (not, e.g., a local mirror's own file)."""
    return os.path.dirname(os.path.abspath(path)) == os.path.abspath(options.cache_dir)


@contextlib.contextmanager
def readable(name: str, path: str, url: str, options: Options):
    """Read a downloaded or mirrored file inside this block: if reading fails, a cached copy is
    removed (the next call fetches it again) and the error names the file and its URL."""
    try:
        yield
    except Exception as err:
        cached = in_cache(path, options)
        if isinstance(err, UnreadableFileError) or (not cached and os.path.basename(name) in str(err)):
            raise  # a mirror's own file, and the reader's error already names it
        raise unreadable(name, path, url, options, f"{type(err).__name__}: {err}") from err


def unreadable(name: str, path: str, url: str, options: Options, problem: str) -> UnreadableFileError:
    """The error for a bad file; removes its copy from the download cache first."""
    if in_cache(path, options):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        where = f"downloaded from {url}; the copy was removed from the download cache, so the next call fetches it again"
    else:
        where = f"at {path}; replace it with the upstream file"
    return UnreadableFileError(f"{name} cannot be read ({problem}): {where}")


def streaming_note(files: int, url: str) -> str:
    """The one message when streaming reads `files` wavs from `url`'s host, one request each."""
    text = f"LUMA: streaming reads {files:,} wav files from {_host(url)}, one request each, fetched block by block."
    if not _is_hub(url):
        return text
    waits = ", ".join(f"about {durations.readable(expected_wait_s(files, n, HUB_WINDOW_S))} {who}" for who, n in HUB_LIMITS.items())
    return (text + f" The Hub's rate limit makes that wait {waits} in total (pauses of up to {HUB_WINDOW_S // 60} min); "
            "logging in (`hf auth login` or HF_TOKEN) raises it. Preparing the dataset once "
            "(without streaming) caches the files.")
