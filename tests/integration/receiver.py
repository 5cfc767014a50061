"""receiver.py - a recording HTTP receiver for notifier tests.

Records every request (method, path, headers, parsed JSON body) and answers
with scripted status codes: `script` is a list of statuses used one per
request, `paths` a dict of such lists per request path (used first), then
`default`; `port` 0 picks a free one (a fixed one lets a test stop the
receiver and start another at the same address). Used by the alerting tests as the webhook, Slack
and PagerDuty endpoint of both Vigil and a real Alertmanager.
"""
import http.server
import json
import threading


class Receiver:
    def __init__(self, script=None, default=200, port=0):
        self.lock = threading.Lock()
        self.requests = []
        self.script = list(script or [])
        self.paths = {}
        self.default = default
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with outer.lock:
                    per_path = outer.paths.get(self.path)
                    if per_path:
                        status = per_path.pop(0)
                    elif outer.script:
                        status = outer.script.pop(0)
                    else:
                        status = outer.default
                    outer.requests.append({"method": "POST", "path": self.path,
                                           "headers": dict(self.headers), "body": body,
                                           "raw": raw, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def received(self, path=None):
        """Requests so far (answered 2xx or not), optionally for one path."""
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False
