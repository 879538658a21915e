#!/usr/bin/env bash
# Runs docker/metadata-action's own cases (DIR: a copy of shared/conformance/metadata-action, see its README)
# through the real binary, `octopush meta`, as the runner would run it: the case's inputs as INPUT_* variables,
# the fixture's GITHUB_* variables (its event payload read from DIR/fixtures), SOURCE_DATE_EPOCH for the suite's
# clock (2020-01-10T00:30:00Z), GITHUB_API_URL at a local server answering GET /repos/*/* with repo.json, and
# outputs read back from GITHUB_OUTPUT. Prints one line per failing case, then `N passed, N failed`.
#
# Usage: scripts/conformance-meta.sh DIR        (binary: ${OCTOPUSH_BIN:-target/debug/octopush})
# Exit: 0 all passed, 1 some failed, 2 DIR or the binary missing.
set -euo pipefail

dir="${1:-}"
if [ -z "$dir" ] || [ ! -f "$dir/cases.json" ] || [ ! -f "$dir/fixtures/repo.json" ]; then
  echo "conformance-meta: no metadata-action cases at '${dir}' (want DIR/cases.json and DIR/fixtures/repo.json)" >&2
  echo "usage: $0 DIR   (for example: $0 ../shared/conformance/metadata-action)" >&2
  exit 2
fi
bin="${OCTOPUSH_BIN:-target/debug/octopush}"
if [ ! -x "$bin" ]; then
  echo "conformance-meta: no octopush binary at '$bin': run \`cargo build\` or set OCTOPUSH_BIN" >&2
  exit 2
fi
command -v python3 >/dev/null 2>&1 || { echo "conformance-meta: python3 is needed" >&2; exit 2; }

exec python3 - "$dir" "$bin" <<'PY'
import datetime, http.server, json, os, re, subprocess, sys, tempfile, threading

case_dir, binary = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
cases = json.load(open(os.path.join(case_dir, "cases.json")))
repo_body = open(os.path.join(case_dir, "fixtures", "repo.json"), "rb").read()
repo = json.loads(repo_body)
EPOCH = "1578616200"  # 2020-01-10T00:30:00Z, the suite's clock


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if re.fullmatch(r"/repos/[^/]+/[^/]+/?", self.path.split("?")[0]):
            status, body = 200, repo_body
        else:
            status, body = 404, b'{"message":"Not Found"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
api_url = "http://127.0.0.1:%d" % server.server_address[1]


def dotenv(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def read_outputs(path):
    """The runner's file-command format: `name<<DELIM`, value lines, `DELIM`; or `name=value`."""
    out, lines, i = {}, open(path, encoding="utf-8").read().split("\n"), 0
    while i < len(lines):
        m = re.fullmatch(r"([^=<]+)<<(.+)", lines[i])
        if m:
            name, delim, value, i = m.group(1), m.group(2), [], i + 1
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            out[name] = "\n".join(value)
        elif "=" in lines[i]:
            k, v = lines[i].split("=", 1)
            out[k] = v
        i += 1
    return out


def split_lines(s):
    return [l for l in (s or "").split("\n") if l != ""]


def kv(lines):
    return dict(l.split("=", 1) for l in lines if "=" in l)


def instant(s):
    try:
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def same_labels(got, want):
    created = [k for k in want if k.endswith("org.opencontainers.image.created")]
    if set(got) != set(want):
        return False
    for k, v in want.items():
        if k in created:
            if got[k] != v and (instant(got[k]) is None or instant(got[k]) != instant(v)):
                return False
        elif got[k] != v:
            return False
    return True


def expected_annotations(case, labels):
    """The eight defaults (from repo.json and the expected labels) at `manifest:`, then the case's lines."""
    oci = "org.opencontainers.image."
    want = {
        oci + "title": repo.get("name") or "",
        oci + "description": repo.get("description") or "",
        oci + "url": repo.get("html_url") or "",
        oci + "source": repo.get("html_url") or "",
        oci + "licenses": (repo.get("license") or {}).get("spdx_id") or "",
        oci + "version": case["version"] or "",
        oci + "created": labels.get(oci + "created", ""),
        oci + "revision": labels.get(oci + "revision", ""),
    }
    want.update(kv(case["inputs"].get("annotations", [])))
    return {"manifest:" + k: v for k, v in want.items()}


def base_env():
    drop = ("GITHUB_", "INPUT_", "RUNNER_", "ACTIONS_", "DOCKER_METADATA_", "STATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def run_case(case, work):
    env = base_env()
    fixture = dotenv(os.path.join(case_dir, "fixtures", case["env"]))
    env.update(fixture)
    if fixture.get("GITHUB_EVENT_PATH"):
        env["GITHUB_EVENT_PATH"] = os.path.join(case_dir, "fixtures", os.path.basename(fixture["GITHUB_EVENT_PATH"]))
    if not env.get("GITHUB_REPOSITORY"):
        env["GITHUB_REPOSITORY"] = "docker/repo"  # the suite's harness falls back to it (README)
    # The fixture's file-command paths and workspace are the recorded runner's: point them here.
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE"):
        path = os.path.join(work, name.lower())
        open(path, "w").close()
        env[name] = path
    env["GITHUB_WORKSPACE"] = work
    env["GITHUB_API_URL"] = api_url
    env["SOURCE_DATE_EPOCH"] = EPOCH
    for name in ("images", "tags", "flavor", "labels", "annotations"):
        env["INPUT_" + name.upper()] = "\n".join(case["inputs"].get(name, []))
    try:
        p = subprocess.run([binary, "meta"], env=env, cwd=work, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ["timed out"]
    if p.returncode != 0:
        tail = " | ".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-3:])
        return ["exit %d: %s" % (p.returncode, tail)]
    out = read_outputs(env["GITHUB_OUTPUT"])
    diffs = []

    def differs(what, got, want):
        if got != want:
            diffs.append("%s %s, want %s" % (what, json.dumps(got), json.dumps(want)))

    want_tags = case["tags"]
    no_images = not case["inputs"].get("images")
    want_names = []
    for t in want_tags:
        n = t if no_images else t.rsplit(":", 1)[-1]
        if n not in want_names:
            want_names.append(n)
    differs("version", out.get("version", None), case["version"] or "")
    if not no_images:  # empty images: octopush's default image is the repository's, so only names compare
        differs("tags", split_lines(out.get("tags")), want_tags)
    differs("tag-names", split_lines(out.get("tag-names")), want_names)
    want_labels = kv(case["labels"])
    got_labels = kv(split_lines(out.get("labels")))
    if not same_labels(got_labels, want_labels):
        differs("labels", got_labels, want_labels)
    want_ann = expected_annotations(case, want_labels)
    got_ann = kv(split_lines(out.get("annotations")))
    if not same_labels(got_ann, want_ann):
        differs("annotations", got_ann, want_ann)
    try:
        j = json.loads(out.get("json", ""))
    except ValueError:
        j = None
    if not isinstance(j, dict):
        diffs.append("json is not an object: %r" % out.get("json"))
    else:
        differs("json.tags", j.get("tags"), split_lines(out.get("tags")))
        if not same_labels(j.get("labels") or {}, want_labels):
            differs("json.labels", j.get("labels"), want_labels)
    return diffs


passed = failed = 0
with tempfile.TemporaryDirectory(prefix="octopush-conformance-") as tmp:
    for case in cases:
        work = tempfile.mkdtemp(dir=tmp)
        diffs = run_case(case, work)
        if diffs:
            failed += 1
            print("FAIL %s (%s): %s" % (case["id"], case["env"], "; ".join(diffs)))
        else:
            passed += 1
server.shutdown()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
