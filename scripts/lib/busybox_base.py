#!/usr/bin/env python3
"""Writes a busybox base image as an OCI layout, from Debian's static busybox, for scripts that need a small base
with a shell and no registry of the internet: the demo (its example image runs on it) and the bench.

    busybox_base.py OUT_DIR BUSYBOX_BINARY

Tags in the layout: `1` (linux/amd64) and `multi` (an index of linux/amd64 and linux/arm64/v8; the arm64 entry
holds the same binary, which is fine where nothing in it is run). Everything is deterministic (mtime 0).
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

APPLETS = ["sh", "ls", "cat", "echo", "httpd", "head", "dd", "yes", "seq", "awk", "mkdir", "wc", "sha256sum"]


def main(out, busybox):
    os.makedirs(f"{out}/blobs/sha256", exist_ok=True)

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for d in ["bin", "etc", "tmp", "srv"]:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, 0
            t.addfile(ti)
        with open(busybox, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = len(data), 0o755, 0
        t.addfile(ti, io.BytesIO(data))
        for n in APPLETS:
            ti = tarfile.TarInfo("bin/" + n)
            ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, "busybox", 0
            t.addfile(ti)
    raw = buf.getvalue()
    layer, layer_size = blob(gzip.compress(raw, mtime=0))
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()

    def image(arch, variant=None):
        cfg = {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "busybox-static"}],
            "created": "1970-01-01T00:00:00Z",
        }
        if variant:
            cfg["variant"] = variant
        cdig, csize = blob(json.dumps(cfg).encode())
        m = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}],
        }
        mdig, msize = blob(json.dumps(m).encode())
        plat = {"architecture": arch, "os": "linux"}
        if variant:
            plat["variant"] = variant
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize, "platform": plat}

    amd, arm = image("amd64"), image("arm64", "v8")
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]}
    idig, isize = blob(json.dumps(idx).encode())
    top = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            dict(amd, annotations={"org.opencontainers.image.ref.name": "1"}),
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idig, "size": isize,
             "annotations": {"org.opencontainers.image.ref.name": "multi"}},
        ],
    }
    with open(f"{out}/index.json", "w") as f:
        json.dump(top, f)
    with open(f"{out}/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
