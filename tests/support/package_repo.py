#!/usr/bin/env python3
"""A package repository for the install tests: static files over HTTP/1.1 (Maven sends `Expect: 100-continue`,
which an HTTP/1.0 server answers only after a timeout), every request behind Basic auth as GitHub Packages is,
GET/HEAD to read and PUT to deploy. With `--maven`, the second path segment is ignored as GitHub's Maven registry
ignores it (`/OWNER/REPOSITORY/...` and `/OWNER/*/...` are one namespace per owner).

Usage: package_repo.py ROOT USER PASSWORD [--maven]. Prints its port on the first line of stdout, then logs one
line per request to stderr: `METHOD PATH STATUS auth=yes|no`.
"""

import base64
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, USER, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
MAVEN = "--maven" in sys.argv[4:]
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _log(self, status, authed):
        print(f"{self.command} {self.path} {status} auth={'yes' if authed else 'no'}", file=sys.stderr, flush=True)

    def _file(self):
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if MAVEN and len(parts) >= 2:
            parts = parts[:1] + parts[2:]
        if any(p in ("..", ".") for p in parts):
            return None
        return os.path.join(ROOT, *parts)

    def _reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self):
        authed = self.headers.get("Authorization") == EXPECTED
        if not authed:
            # Drain a body the client sent anyway, so the connection stays usable.
            length = int(self.headers.get("Content-Length") or 0)
            if length and self.command == "PUT":
                self.rfile.read(length)
            self._reply(401, b"authentication required\n", [("WWW-Authenticate", 'Basic realm="packages"')])
            self._log(401, False)
        return authed

    def do_GET(self):
        if not self._authorised():
            return
        f = self._file()
        if f is None or not os.path.isfile(f):
            self._reply(404, b"not found\n")
            self._log(404, True)
            return
        with open(f, "rb") as fh:
            data = fh.read()
        self._reply(200, data, [("Content-Type", "application/octet-stream")])
        self._log(200, True)

    do_HEAD = do_GET

    def do_PUT(self):
        if not self._authorised():
            return
        f = self._file()
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if f is None:
            self._reply(400, b"bad path\n")
            self._log(400, True)
            return
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as fh:
            fh.write(data)
        self._reply(201)
        self._log(201, True)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
