"""A loopback HTTP server that behaves like the Hub under load, for tests and benchmarks.

It serves a folder from 127.0.0.1 and can: answer 429 with `Retry-After` and `RateLimit`
headers past `limit` requests per fixed `window_s` window (and send the Hub's `RateLimit` /
`RateLimit-Policy` headers on every answer); add `latency_s` per request; serve a file
truncated once (a complete-looking short answer, as a broken proxy would); and die in the
middle of a file (every later connection is dropped without an answer).
"""

import collections
import http.server
import math
import threading
import time


class ThrottledServer:
    """Use as a context manager; `url` is the base URL, `log` lists (path, status) per request."""

    def __init__(self, root, limit=None, window_s=1.0, latency_s=0.0, redirect=False):
        """redirect: answer every file with a 302 to /cdn/<path> (limited and carrying the limit
        headers, like the Hub's /resolve/), served from /cdn/ without a limit (like its CDN)."""
        self.root, self.limit, self.window_s, self.latency_s = str(root), limit, window_s, latency_s
        self.redirect = redirect
        self.log = []
        self.auth_headers = []
        self._truncate = set()
        self._die_on = None
        self.dead = False
        self.windows_used_up = 0  # windows in which the limit was reached
        self._lock = threading.Lock()
        self._window_start, self._count = time.monotonic(), 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def truncate_once(self, path_suffix):
        """The next request for a path ending in `path_suffix` gets the first half of the file."""
        self._truncate.add(path_suffix)

    def die_on(self, path_suffix):
        """The server dies while sending a path ending in `path_suffix`."""
        self._die_on = path_suffix

    def revive(self):
        """Back to life after `die_on`, with nothing set to die."""
        self._die_on, self.dead = None, False

    def served(self, status=200):
        """Counter of paths answered with `status`."""
        return collections.Counter(path for path, code in self.log if code == status)

    def _take(self):
        """(allowed, remaining, seconds until the window resets) for one request."""
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_s:
                self._window_start, self._count = now, 0
            reset = max(1, math.ceil(self._window_start + self.window_s - now))
            if self.limit is None:
                return True, None, reset
            allowed = self._count < self.limit
            self._count += allowed
            self.windows_used_up += allowed and self._count == self.limit
            return allowed, self.limit - self._count, reset

    def _handler(self):
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=server.root, **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                if server.dead:
                    self.close_connection = True
                    return
                time.sleep(server.latency_s)
                server.auth_headers.append(self.headers.get("Authorization"))
                cdn = self.path.startswith("/cdn/")
                if cdn:
                    self.path = self.path[len("/cdn"):]
                allowed, remaining, reset = (True, None, None) if cdn else server._take()
                if not allowed:
                    server.log.append((self.path, 429))
                    self.send_response(429)
                    self.send_header("Retry-After", str(reset))
                    self._limit_headers(0, reset)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.redirect and not cdn:
                    server.log.append((self.path, 302))
                    self.send_response(302)
                    self._limit_headers(remaining, reset)
                    self.send_header("Location", "/cdn" + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.translate_path(self.path)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    server.log.append((self.path, 404))
                    self.send_error(404)
                    return
                dying = server._die_on is not None and self.path.endswith(server._die_on)
                suffix = next((s for s in server._truncate if self.path.endswith(s)), None)
                if suffix is not None:
                    server._truncate.discard(suffix)
                    data = data[: len(data) // 2]
                server.log.append((self.path, 200))
                self.send_response(200)
                if not cdn:
                    self._limit_headers(remaining, reset)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if dying:
                    server.dead = True
                    self.wfile.write(data[: len(data) // 3])
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def _limit_headers(self, remaining, reset):
                if server.limit is not None:
                    self.send_header("RateLimit", f'"resolvers";r={remaining};t={reset}')
                    self.send_header("RateLimit-Policy", f'"fixed window";"resolvers";q={server.limit};w={server.window_s:g}')

        return Handler
