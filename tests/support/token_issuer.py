#!/usr/bin/env python3
"""A ghcr.io-style registry token issuer for the integration tests (tests/common/registry.rs starts it).

It serves the Docker token protocol on 127.0.0.1 and mints RS256 JWTs that the CNCF distribution registry
(`auth.token`) accepts: the header carries the signing certificate in `x5c` (the registry refuses a bare `kid`),
the claims are `iss, sub, aud (= service), exp, nbf, iat, jti, access`.

    GET  /token?service=S&scope=repository:NAME:pull,push&scope=...   (Basic credentials optional)
    POST /token   (OAuth2 form: grant_type=password|refresh_token, username, password, service, scope)

Anonymous callers get `pull` only (like public ghcr.io); a caller with the right Basic credentials gets the
actions it asked for (limited by --authenticated-actions); wrong credentials get 401. Each request is logged as
one JSON line to --log (never the credentials). On start it writes the certificate to --cert-out (the registry's
`rootcertbundle`) and prints its port to stdout.

The password comes from --password or, better (it then stays out of `ps`), the TOKEN_ISSUER_PASSWORD variable.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_key_and_cert(common_name: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def parse_scope(scope: str):
    """`repository:octo/app:pull,push` -> ("repository", "octo/app", ["pull", "push"]); None if malformed."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    typ, actions = parts[0], parts[-1]
    name = ":".join(parts[1:-1])
    if not typ or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


class Issuer:
    def __init__(self, args):
        self.args = args
        self.password = os.environ.get("TOKEN_ISSUER_PASSWORD", args.password)
        self.key, self.cert = make_key_and_cert(args.issuer)
        self.x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        self.granted_actions = [a for a in args.authenticated_actions.split(",") if a]
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None

    def log(self, entry: dict):
        if self.log_file is None:
            return
        line = json.dumps(entry, sort_keys=True)
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def check_basic(self, header):
        """None when no credentials were sent, else (account, ok)."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return ("", False)
        try:
            user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except Exception:
            return ("", False)
        ok = self.args.user is not None and user == self.args.user and password == self.password
        return (user, ok)

    def mint(self, account, service, scopes):
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            typ, name, wanted = parsed
            if account is None:
                allowed = [a for a in wanted if a == "pull"] if typ == "repository" else []
            else:
                allowed = [a for a in wanted if a in self.granted_actions]
            access.append({"type": typ, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": self.args.issuer,
            "sub": account or "",
            "aud": service,
            "exp": now + self.args.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + b64url(signature)
        issued_at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return token, access, issued_at


def make_handler(issuer: Issuer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "octopush-test-token-issuer"

        def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
            pass  # our own JSON log instead of stderr lines

        def reply(self, status, body: dict, extra_headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra_headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def handle_token(self, method, params, account_header, form_creds=None):
            url = urllib.parse.urlsplit(self.path)
            service = (params.get("service") or [""])[0]
            scopes = []
            for s in params.get("scope", []):
                scopes.extend(s.split(" "))  # OAuth2 form posts join scopes with spaces
            scopes = [s for s in scopes if s]
            creds = form_creds if form_creds is not None else issuer.check_basic(account_header)
            entry = {
                "method": method,
                "path": url.path,
                "service": service,
                "scopes": scopes,
                "harness": self.headers.get("X-Octopush-Harness") is not None,
                "user_agent": self.headers.get("User-Agent", ""),
            }
            if url.path != "/token":
                entry.update(status=404, account=None, granted=[])
                issuer.log(entry)
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "only /token is served"}]})
                return
            if creds is not None and not creds[1]:
                entry.update(status=401, account=creds[0] or None, granted=[])
                issuer.log(entry)
                self.reply(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "wrong username or password"}]},
                    [("WWW-Authenticate", 'Basic realm="octopush-test-token-issuer"')],
                )
                return
            account = creds[0] if creds is not None else None
            token, access, issued_at = issuer.mint(account, service, scopes)
            entry.update(status=200, account=account, granted=access)
            issuer.log(entry)
            body = {
                "token": token,
                "access_token": token,
                "expires_in": issuer.args.expires_in,
                "issued_at": issued_at,
            }
            if form_creds is not None:
                body["refresh_token"] = "refresh-" + uuid.uuid4().hex
            self.reply(200, body)

        def do_GET(self):
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            self.handle_token("GET", params, self.headers.get("Authorization"))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            grant = (form.get("grant_type") or [""])[0]
            creds = None
            if grant == "password":
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                ok = issuer.args.user is not None and user == issuer.args.user and password == issuer.password
                creds = (user, ok)
            elif grant == "refresh_token":
                # Refresh tokens are not tracked: any one we issued stands for the configured user.
                ok = (form.get("refresh_token") or [""])[0].startswith("refresh-")
                creds = (issuer.args.user or "", ok)
            self.handle_token("POST", form, None, creds)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", help="the one account that may authenticate")
    parser.add_argument("--password", default="", help="its password (prefer TOKEN_ISSUER_PASSWORD)")
    parser.add_argument("--issuer", default="octopush-test-issuer", help="the `iss` claim")
    parser.add_argument("--cert-out", required=True, help="where to write the signing certificate (PEM)")
    parser.add_argument("--log", help="append one JSON line per request here")
    parser.add_argument("--expires-in", type=int, default=300, help="token lifetime in seconds")
    parser.add_argument(
        "--authenticated-actions",
        default="pull,push,delete,*",
        help="actions an authenticated caller may be granted (comma-separated)",
    )
    args = parser.parse_args()

    issuer = Issuer(args)
    with open(args.cert_out, "wb") as f:
        f.write(issuer.cert.public_bytes(serialization.Encoding.PEM))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(issuer))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
