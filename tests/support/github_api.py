#!/usr/bin/env python3
"""A local stand-in for GitHub's Packages REST API, for the prune and restore tests (tests/common/github_api.rs
starts it). GitHub's API cannot be reached from the test machines; this answers with the payloads GitHub's REST
documentation gives for the endpoints octopush uses, and keeps container packages in a real registry:

    GET    /users/{name}                                  (type: User or Organization)
    GET    /orgs/{org}
    GET    /{orgs|users}/{owner}/packages/{type}/{name}   (the name URL-encoded, `/` as %2F)
    GET    .../versions?per_page=&page=&state=            (newest first, `Link` headers: next, last, first, prev)
    GET    .../versions/{id}
    DELETE .../versions/{id}                              (204; the manifest is deleted from the registry)
    POST   .../versions/{id}/restore                      (204; the manifest and its tags are put back)

A container package's tags are read live from its registry (tags/list, then a HEAD per tag), so what the API
says is what the registry holds. Deleting a version deletes its manifest by digest from the registry (which
untags it); restoring puts the saved manifest and tags back, so a restored tag can be pulled again. Packages of
other types keep their versions in the state file only.

Tokens come from the state file: unknown ones get 401; a token without `write` gets GitHub's 403 on delete and
restore. `faults` in the state file make chosen requests fail first (rate limits, 5xx), as many `times` as said.
Each request is logged to --log as one JSON line (method, path, query, status, auth scheme; never the token).
On start it prints its port.
"""

import argparse
import base64
import datetime
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
DOCS = "https://docs.github.com/rest/packages/packages"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RegistryClient:
    """Just enough of the distribution API, with Basic or ghcr-style bearer tokens, for the fake's own use."""

    def __init__(self, spec):
        self.url = spec["url"].rstrip("/")
        self.repository = spec["repository"]
        self.user = spec.get("user")
        self.password = spec.get("password")
        self.tokens = {}

    def _basic(self):
        raw = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _token(self, challenge: str, scope_actions: str):
        params = {}
        for part in challenge[len("Bearer ") :].split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                params[k.strip()] = v.strip().strip('"')
        scope = f"repository:{self.repository}:{scope_actions}"
        query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": scope})
        req = urllib.request.Request(f"{params['realm']}?{query}")
        if self.user:
            req.add_header("Authorization", self._basic())
        req.add_header("X-Octopush-Harness", "1")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["token"]

    def request(self, method, path, headers=None, body=None, actions="pull"):
        url = f"{self.url}/v2/{self.repository}/{path}"
        for attempt in range(2):
            req = urllib.request.Request(url, data=body, method=method)
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            req.add_header("User-Agent", "octopush-test-harness")
            auth = self.tokens.get(actions)
            if auth:
                req.add_header("Authorization", auth)
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 0:
                    challenge = e.headers.get("WWW-Authenticate", "")
                    if challenge.startswith("Bearer "):
                        self.tokens[actions] = "Bearer " + self._token(challenge, actions)
                    else:
                        self.tokens[actions] = self._basic()
                    continue
                return e.code, dict(e.headers), e.read()
        return 401, {}, b""

    def tags_by_digest(self):
        status, _, body = self.request("GET", "tags/list")
        if status != 200:
            return {}
        out = {}
        for tag in sorted(json.loads(body).get("tags") or []):
            st, headers, _ = self.request("HEAD", f"manifests/{tag}", {"Accept": MANIFEST_ACCEPT})
            digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
            if st == 200 and digest:
                out.setdefault(digest, []).append(tag)
        return out

    def delete(self, digest):
        """Deletes the manifest; returns what restoring it needs (bytes, type, tags), or an error string."""
        tags = self.tags_by_digest().get(digest, [])
        status, headers, body = self.request("GET", f"manifests/{digest}", {"Accept": MANIFEST_ACCEPT})
        if status != 200:
            return None, f"GET manifest {digest}: {status}"
        media_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        st, _, text = self.request("DELETE", f"manifests/{digest}", actions="pull,push,delete")
        if st != 202:
            return None, f"DELETE manifest {digest}: {st} {text[:200]!r}"
        return {"bytes": base64.b64encode(body).decode(), "media_type": media_type, "tags": tags}, None

    def restore(self, digest, saved):
        body = base64.b64decode(saved["bytes"])
        headers = {"Content-Type": saved["media_type"]}
        for ref in [digest] + saved["tags"]:
            st, _, text = self.request("PUT", f"manifests/{ref}", headers, body, actions="pull,push")
            if st != 201:
                return f"PUT manifest {ref}: {st} {text[:200]!r}"
        return None


class State:
    def __init__(self, path):
        with open(path) as f:
            data = json.load(f)
        self.tokens = data.get("tokens", {})
        self.accounts = data.get("accounts", {})
        self.faults = data.get("faults", [])
        self.packages = []
        for p in data.get("packages", []):
            p = dict(p)
            p["registry_client"] = RegistryClient(p["registry"]) if p.get("registry") else None
            p["versions"] = [dict(v, deleted_at=None, saved=None) for v in p["versions"]]
            self.packages.append(p)
        self.lock = threading.Lock()

    def package(self, owner, ptype, name):
        for p in self.packages:
            if p["owner"].lower() == owner.lower() and p["type"] == ptype and p["name"] == name:
                return p
        return None


def simple_user(base, login, kind, uid):
    u = f"{base}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": base64.b64encode(f"{kind}:{uid}".encode()).decode(),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": u,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos",
        "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events",
        "type": kind,
        "site_admin": False,
    }


def make_handler(state: State, log_path):
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def base(self):
            return f"http://{self.headers.get('Host', '127.0.0.1')}"

        def send(self, status, payload=None, headers=None):
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
            self.record(status)

        def record(self, status):
            if not log_path:
                return
            parsed = urllib.parse.urlsplit(self.path)
            auth = self.headers.get("Authorization", "")
            line = {
                "method": self.command,
                "path": parsed.path,
                "query": parsed.query,
                "status": status,
                "auth": auth.split(" ", 1)[0].lower() if auth else None,
                "user_agent": self.headers.get("User-Agent", ""),
            }
            with log_lock, open(log_path, "a") as f:
                f.write(json.dumps(line) + "\n")

        def error(self, status, message, doc=DOCS, headers=None):
            self.send(status, {"message": message, "documentation_url": doc, "status": str(status)}, headers)

        def fault(self, path):
            with state.lock:
                for f in state.faults:
                    if f.get("times", 1) > 0 and f["method"] == self.command and f["path"] == path:
                        f["times"] = f.get("times", 1) - 1
                        return f
            return None

        def token(self):
            auth = self.headers.get("Authorization", "")
            scheme, _, value = auth.partition(" ")
            if scheme.lower() not in ("bearer", "token") or not value:
                return None, "Requires authentication"
            t = state.tokens.get(value.strip())
            if t is None:
                return None, "Bad credentials"
            return t, None

        def do_GET(self):
            self.route()

        def do_DELETE(self):
            self.route()

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.route()

        def route(self):
            parsed = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parsed.query)
            raw_parts = parsed.path.strip("/").split("/")
            parts = [urllib.parse.unquote(p) for p in raw_parts]
            f = self.fault(parsed.path)
            if f:
                return self.send(f["status"], f.get("body"), f.get("headers"))
            tok, why = self.token()
            if tok is None:
                return self.error(401, why, "https://docs.github.com/rest")
            if len(parts) == 2 and parts[0] == "users" and self.command == "GET":
                kind = state.accounts.get(parts[1])
                if not kind:
                    return self.error(404, "Not Found", "https://docs.github.com/rest/users/users#get-a-user")
                return self.send(200, simple_user(self.base(), parts[1], kind, 1000 + len(parts[1])))
            if len(parts) == 2 and parts[0] == "orgs" and self.command == "GET":
                if state.accounts.get(parts[1]) != "Organization":
                    return self.error(404, "Not Found", "https://docs.github.com/rest/orgs/orgs#get-an-organization")
                return self.send(200, {"login": parts[1], "id": 2000, "type": "Organization"})
            if len(parts) >= 5 and parts[0] in ("orgs", "users") and parts[2] == "packages":
                return self.packages(parts, query, tok)
            return self.error(404, "Not Found", "https://docs.github.com/rest")

        def packages(self, parts, query, tok):
            prefix, owner, _, ptype, name = parts[:5]
            rest = parts[5:]
            kind = state.accounts.get(owner)
            wanted = "Organization" if prefix == "orgs" else "User"
            package = state.package(owner, ptype, name) if kind == wanted else None
            if package is None:
                return self.error(404, "Package not found.", f"{DOCS}#get-a-package-for-an-organization")
            route = f"{self.base()}/{prefix}/{owner}/packages/{ptype}/{urllib.parse.quote(name, safe='')}"
            html = f"https://github.com/{prefix}/{owner}/packages/{ptype}/package/{urllib.parse.quote(name, safe='')}"
            if not rest and self.command == "GET":
                active = [v for v in package["versions"] if not v["deleted_at"]]
                return self.send(
                    200,
                    {
                        "id": package.get("id", 197),
                        "name": name,
                        "package_type": ptype,
                        "owner": simple_user(self.base(), owner, kind, 1000 + len(owner)),
                        "version_count": len(active),
                        "visibility": "private",
                        "url": route,
                        "html_url": html,
                        "created_at": "2020-01-01T00:00:00Z",
                        "updated_at": now_iso(),
                    },
                )
            if rest == ["versions"] and self.command == "GET":
                return self.list_versions(package, route, html, query)
            if len(rest) >= 2 and rest[0] == "versions" and rest[1].isdigit():
                version = next((v for v in package["versions"] if v["id"] == int(rest[1])), None)
                if version is None:
                    return self.error(404, "Package version not found.", f"{DOCS}#get-a-package-version-for-an-organization")
                if len(rest) == 2 and self.command == "GET":
                    tags = self.tags(package)
                    return self.send(200, self.version_json(package, version, route, html, tags))
                if len(rest) == 2 and self.command == "DELETE":
                    return self.delete(package, version, tok)
                if rest[2:] == ["restore"] and self.command == "POST":
                    return self.restore(package, version, tok)
            return self.error(404, "Not Found", "https://docs.github.com/rest")

        def tags(self, package):
            client = package["registry_client"]
            return client.tags_by_digest() if client else {}

        def version_json(self, package, v, route, html, tags):
            ptype = package["type"]
            out = {
                "id": v["id"],
                "name": v["name"],
                "url": f"{route}/versions/{v['id']}",
                "package_html_url": html,
                "html_url": f"{html}/{v['id']}",
                "created_at": v["created_at"],
                "updated_at": v.get("updated_at", v["created_at"]),
                "metadata": {"package_type": ptype},
            }
            if v["deleted_at"]:
                out["deleted_at"] = v["deleted_at"]
            if ptype == "container":
                out["metadata"]["container"] = {"tags": tags.get(v["name"], [])}
            return out

        def list_versions(self, package, route, html, query):
            state_filter = query.get("state", ["active"])[0]
            try:
                per_page = min(100, max(1, int(query.get("per_page", ["30"])[0])))
                page = max(1, int(query.get("page", ["1"])[0]))
            except ValueError:
                return self.error(422, "Validation Failed")
            versions = [v for v in package["versions"] if bool(v["deleted_at"]) == (state_filter == "deleted")]
            versions.sort(key=lambda v: (v["created_at"], v["id"]), reverse=True)
            last = max(1, (len(versions) + per_page - 1) // per_page)
            chunk = versions[(page - 1) * per_page : page * per_page]
            tags = self.tags(package) if chunk else {}
            links = []

            def link(p, rel):
                q = urllib.parse.urlencode({"per_page": per_page, "page": p, **({"state": state_filter} if "state" in query else {})})
                links.append(f'<{route}/versions?{q}>; rel="{rel}"')

            if page < last:
                link(page + 1, "next")
                link(last, "last")
            if page > 1:
                link(1, "first")
                link(page - 1, "prev")
            headers = {"Link": ", ".join(links)} if links else {}
            return self.send(200, [self.version_json(package, v, route, html, tags) for v in chunk], headers)

        def delete(self, package, version, tok):
            if not tok.get("write"):
                return self.error(403, "Resource not accessible by integration", f"{DOCS}#delete-package-version-for-an-organization")
            with state.lock:
                if version["deleted_at"]:
                    return self.error(404, "Package version not found.")
                if sum(1 for v in package["versions"] if not v["deleted_at"]) == 1:
                    return self.error(400, "You cannot delete the last version of a package. You must delete the package instead.")
                client = package["registry_client"]
                if client:
                    saved, err = client.delete(version["name"])
                    if err:
                        return self.error(500, f"the registry behind the test API failed: {err}")
                    version["saved"] = saved
                version["deleted_at"] = now_iso()
            return self.send(204)

        def restore(self, package, version, tok):
            if not tok.get("write"):
                return self.error(403, "Resource not accessible by integration", f"{DOCS}#restore-package-version-for-an-organization")
            with state.lock:
                if not version["deleted_at"]:
                    return self.error(404, "Package version not found.")
                client = package["registry_client"]
                if client and version["saved"]:
                    err = client.restore(version["name"], version["saved"])
                    if err:
                        return self.error(500, f"the registry behind the test API failed: {err}")
                version["deleted_at"] = None
                version["saved"] = None
            return self.send(204)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", required=True, help="the JSON state: tokens, accounts, packages, faults")
    parser.add_argument("--log", help="append one JSON line per request here")
    args = parser.parse_args()
    state = State(args.state)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state, args.log))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
