"""harness.py - shared helpers for Vigil's integration tests.

Integration tests start real processes on free loopback ports, wait on
conditions with generous deadlines (never sleep-and-hope), and always stop
what they started, even when an assertion fails. Standard library only, so
the suite needs nothing from pip.
"""
import http.server
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VIGIL_BUILD_DIR", os.path.join(ROOT, "build"))
SHARED = os.environ.get("VIGIL_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))


def kafka_bootstrap():
    """The shared broker's bootstrap address: $VIGIL_KAFKA_BOOTSTRAP, else
    whatever scripts/kafka.sh start (idempotent) prints last."""
    addr = os.environ.get("VIGIL_KAFKA_BOOTSTRAP")
    if addr:
        return addr
    out = subprocess.run([os.path.join(ROOT, "scripts", "kafka.sh"), "start"], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=60.0, interval=0.2):
    """Poll fn until it returns a truthy value; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # the server may not be up yet
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last error: %r)" % (timeout, what, last_exc))


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def api(base, path, **params):
    q = urllib.parse.urlencode(params, doseq=True)
    status, body = http_get("%s%s?%s" % (base, path, q))
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise AssertionError("API error: %r" % doc)
    return doc["data"]


class Procs:
    """Starts processes and guarantees they are stopped (use as a context manager)."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.TemporaryDirectory(prefix="vigil-it-")
        self.dir = self.tmp.name

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs.append((name, p, log))
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def check_alive(self):
        for name, p, _ in self.procs:
            if p.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (name, p.returncode, self.log(name)[-4000:]))

    def stop_all(self):
        """Stop everything; return [(name, problem)] for processes that did not exit cleanly."""
        bad = []
        for name, p, log in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    bad.append((name, "did not stop within 30s of SIGTERM"))
            if p.returncode not in (0, None) and not any(n == name for n, _ in bad):
                bad.append((name, "exited with status %s" % p.returncode))
            log.close()
        return bad

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        names = [name for name, _, _ in self.procs]
        bad = self.stop_all()
        self.procs = []
        if exc[0] is not None or bad:
            for name in names:
                print("---- %s log (tail) ----\n%s" % (name, self.log(name)[-3000:]))
        self.tmp.cleanup()
        if bad and exc[0] is None:
            # A crash, sanitizer report or hang at shutdown fails the test too.
            raise AssertionError("unclean shutdown: %r" % bad)
        return False


class FixtureServer:
    """Serves one exposition file at /metrics on a free loopback port."""

    def __init__(self, path, content_type="text/plain; version=0.0.4; charset=utf-8"):
        with open(path, "rb") as f:
            body = f.read()
        self.requests = 0

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def parse_exposition(text):
    """Independent, minimal text-format parser: [(labels_dict, value_str)]."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        i = 0
        while i < len(line) and line[i] not in "{ \t":
            i += 1
        labels = {"__name__": line[:i]}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                while line[i] in " ,":
                    i += 1
                if line[i] == "}":
                    i += 1
                    break
                j = line.index("=", i)
                name = line[i:j].strip()
                i = line.index('"', j) + 1
                val = []
                while line[i] != '"':
                    if line[i] == "\\":
                        i += 1
                        val.append({"n": "\n"}.get(line[i], line[i]))
                    else:
                        val.append(line[i])
                    i += 1
                i += 1
                labels[name] = "".join(val)
        rest = line[i:].split()
        out.append((labels, rest[0]))
    return out
