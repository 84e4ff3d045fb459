#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub's HTTP API, as far as downloads go
(python stdlib only; tests/e2e/hub.sh points HF_ENDPOINT at it).

  GET /api/models/<repo>/revision/<rev>   {"sha": commit, "siblings": [{"rfilename": f}, ...]}
  GET /<repo>/resolve/<rev>/<file>        small files: 200, ETag = git blob sha1, X-Repo-Commit;
                                          *.safetensors (LFS): 302 to another host (localhost:<port>/cdn/<sha256>)
                                          with X-Linked-Etag
                                          (the sha256) and X-Linked-Size, as the Hub answers
  401 for a gated repo without "Authorization: Bearer <token>", 404 for an unknown repo,
  revision or file. Every request is appended to LOG (one line: method path).

usage: mock_hub.py MODEL_DIR PORT_FILE LOG TOKEN [ADAPTER_DIR [DATA_FILE]]
  MODEL_DIR: a model with config.json and model.safetensors; the repos served:
    test-org/tiny         main = commit A (config, tokenizer-free, model.safetensors, and files
                          axo must not fetch: pytorch_model.bin, consolidated.safetensors,
                          original/params.json); tag v1 = commit B (same files, lr-visible
                          change: the weights scaled by 2)
    test-org/sharded      main: model.safetensors.index.json + 2 shards of the same tensors
    test-org/gated        as tiny, but only with the token
    test-org/binonly      config.json + pytorch_model.bin (no safetensors)
    test-org/flaky        as tiny; the first download of model.safetensors is cut short
    test-org/adapter      ADAPTER_DIR's adapter_config.json and adapter_model.safetensors, read
                          when asked (the test writes them after the server starts)
  dataset repos (/api/datasets/..., /datasets/<repo>/resolve/...), DATA_FILE's rows:
    test-org/ds-split     data/train.jsonl (the rows), data/test.jsonl (the first 3), README.md
    test-org/ds-one       alpaca_data_cleaned.json: the rows as one JSON array, no split in its name
    test-org/ds-parquet   data/train-00000-of-00001.parquet only: tests/reference/parquet/toy_count.parquet
                          (the first 200 rows of configs/data/toy_count.jsonl)
    test-org/ds-arrow     train.arrow only (a format axo does not read)
    test-org/ds-configs   a dataset card (README.md) with two configurations and no default: "all"
                          (data/all/train-00000-of-00001.jsonl, the rows) and "half" (data/half/part.jsonl)
    test-org/ds-many      train-0.jsonl and train-1.jsonl (halves)
    test-org/ds-two       train.jsonl (the rows) and extra.jsonl (the first 3)
"""
import hashlib
import http.server
import json
import os
import struct
import sys
import threading


def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    data = b[8 + n:]
    meta = hdr.pop("__metadata__", None)
    tensors = {}
    for k, v in hdr.items():
        s, e = v["data_offsets"]
        tensors[k] = (v["dtype"], v["shape"], data[s:e])
    return tensors, meta


def st_write(tensors, meta=None):
    hdr, off, blobs = {}, 0, []
    if meta:
        hdr["__metadata__"] = meta
    for k in sorted(tensors):
        dt, shape, raw = tensors[k]
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def scaled(tensors, f):
    out = {}
    for k, (dt, shape, raw) in tensors.items():
        if dt == "F32":
            vals = struct.unpack("<%df" % (len(raw) // 4), raw)
            raw = struct.pack("<%df" % len(vals), *[v * f for v in vals])
        out[k] = (dt, shape, raw)
    return out


def commit_of(name):
    return hashlib.sha1(name.encode()).hexdigest()


def main():
    model_dir, port_file, log_path, token = sys.argv[1:5]
    adapter_dir = sys.argv[5] if len(sys.argv) > 5 else None
    data_file = sys.argv[6] if len(sys.argv) > 6 else None
    rows = open(data_file, "rb").read().splitlines(keepends=True) if data_file else []
    dsets = {
        "test-org/ds-split": {"data/train.jsonl": b"".join(rows), "data/test.jsonl": b"".join(rows[:3]),
                              "README.md": b"# ds\n"},
        "test-org/ds-one": {"alpaca_data_cleaned.json": b"[" + b",".join(r.strip() for r in rows) + b"]\n"},
        "test-org/ds-parquet": {"data/train-00000-of-00001.parquet": open(os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference", "parquet", "toy_count.parquet"), "rb").read()},
        "test-org/ds-arrow": {"train.arrow": b"ARROW1\0\0"},
        "test-org/ds-configs": {"README.md": b"---\nlicense: mit\nconfigs:\n- config_name: all\n  data_files:\n  - split: train\n"
                                             b"    path: data/all/train-*\n- config_name: half\n  data_files: data/half/*.jsonl\n"
                                             b"---\n# two configurations, none the default\n",
                                "data/all/train-00000-of-00001.jsonl": b"".join(rows),
                                "data/half/part.jsonl": b"".join(rows[:len(rows) // 2])},
        "test-org/ds-two": {"train.jsonl": b"".join(rows), "extra.jsonl": b"".join(rows[:3])},
        "test-org/ds-many": {"train-0.jsonl": b"".join(rows[:len(rows) // 2]),
                             "train-1.jsonl": b"".join(rows[len(rows) // 2:])},
    }
    cfg = open(os.path.join(model_dir, "config.json"), "rb").read()
    tensors, meta = st_read(os.path.join(model_dir, "model.safetensors"))
    whole = st_write(tensors, meta)
    names = sorted(tensors)
    half = len(names) // 2
    shard_files = {"model-00001-of-00002.safetensors": {k: tensors[k] for k in names[:half]},
                   "model-00002-of-00002.safetensors": {k: tensors[k] for k in names[half:]}}
    shards = {f: st_write(t, meta) for f, t in shard_files.items()}
    index = json.dumps({"metadata": {"total_size": sum(len(t[2]) for t in tensors.values())},
                        "weight_map": {k: f for f, t in shard_files.items() for k in t}}, indent=2).encode()
    extra = {"pytorch_model.bin": b"not read", "consolidated.safetensors": whole,
             "original/params.json": b"{}", "README.md": b"# tiny\n"}
    tiny = dict({"config.json": cfg, "model.safetensors": whole}, **extra)
    repos = {  # repo -> {revision: (commit, files)}
        "test-org/tiny": {"main": (commit_of("tiny-A"), tiny),
                          "v1": (commit_of("tiny-B"), dict(tiny, **{"model.safetensors": st_write(scaled(tensors, 2.0), meta)}))},
        "test-org/sharded": {"main": (commit_of("sharded"), dict({"config.json": cfg, "model.safetensors.index.json": index},
                                                                 **shards))},
        "test-org/gated": {"main": (commit_of("gated"), {"config.json": cfg, "model.safetensors": whole})},
        "test-org/binonly": {"main": (commit_of("binonly"), {"config.json": cfg, "pytorch_model.bin": b"x" * 64})},
        "test-org/flaky": {"main": (commit_of("flaky"), {"config.json": cfg, "model.safetensors": whole})},
    }
    blobs = {}  # sha256 -> bytes (the CDN)
    cut = {"done": False}
    lock = threading.Lock()

    def find(repo, rev, kind="models"):
        if kind == "datasets":
            files = dsets.get(repo)
            c = commit_of("ds:" + repo)
            return (c, files) if files is not None and rev in ("main", c) else None
        if repo == "test-org/adapter" and adapter_dir:
            files = {}
            for f in ("adapter_config.json", "adapter_model.safetensors"):
                p = os.path.join(adapter_dir, f)
                if os.path.exists(p):
                    files[f] = open(p, "rb").read()
            files["README.md"] = b"# adapter\n"
            c = hashlib.sha1(b"".join(files[k] for k in sorted(files))).hexdigest()
            return (c, files) if rev in ("main", c) else None
        revs = repos.get(repo)
        if not revs:
            return None
        if rev in revs:
            return revs[rev]
        for c, f in revs.values():
            if c == rev:
                return c, f
        return None

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        head = False

        def send(self, code, body=b"", headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not self.head:
                self.wfile.write(body)

        def do_HEAD(self):
            self.head = True
            try:
                self.do_GET()
            finally:
                self.head = False

        def do_GET(self):
            from urllib.parse import unquote, urlsplit
            path = unquote(urlsplit(self.path).path)
            rng = self.headers.get("Range")
            with lock:
                with open(log_path, "a") as f:
                    f.write("%s %s%s%s\n" % ("HEAD" if self.head else "GET", path, " range=" + rng if rng else "",
                                               " auth" if self.headers.get("Authorization") else ""))
            if path.startswith("/cdn/"):
                b = blobs.get(path[5:])
                if b is None:
                    return self.send(404)
                if not self.head and flaky_pending(path[5:]):
                    # headers promise the whole file; the connection ends after half of it
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(b)))
                    self.send_header("ETag", '"cdn-%s"' % path[5:16])
                    self.end_headers()
                    self.wfile.write(b[:len(b) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if rng and rng.startswith("bytes=") and rng.endswith("-"):  # a resumed download
                    start = int(rng[6:-1])
                    return self.send(206, b[start:], [("ETag", '"cdn-%s"' % path[5:16]),
                                                      ("Content-Range", "bytes %d-%d/%d" % (start, len(b) - 1, len(b)))])
                return self.send(200, b, [("ETag", '"cdn-%s"' % path[5:16])])
            parts = path.lstrip("/").split("/")
            kind = "models"
            if parts[:2] == ["api", "datasets"]:
                kind, parts = "datasets", ["api", "models"] + parts[2:]
            elif parts[:1] == ["datasets"]:
                kind, parts = "datasets", parts[1:]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":  # huggingface_hub's listing
                repo, rev = "/".join(parts[2:4]), "/".join(parts[5:])
                got = find(repo, rev, kind) if self.authorized(repo) else None
                if not got:
                    return self.send(404 if self.authorized(repo) else 401)
                body = json.dumps([{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                   for f, d in sorted(got[1].items())])
                return self.send(200, body.encode(), [("Content-Type", "application/json")])
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                repo, rev = "/".join(parts[2:4]), "/".join(parts[5:])
                if not self.authorized(repo):
                    return self.send(401, b'{"error":"Access to this repo is restricted"}')
                got = find(repo, rev, kind)
                if not got:
                    return self.send(404, b'{"error":"Repository or revision not found"}')
                def sib(f, d):  # with ?blobs=true the Hub adds size, blobId and an LFS file's sha256
                    e = {"rfilename": f, "size": len(d), "blobId": hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest()}
                    if f.endswith(".safetensors") or f.endswith(".parquet"):
                        e["lfs"] = {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "pointerSize": 134}
                    return e
                body = json.dumps({"id": repo, "sha": got[0], "siblings": [sib(f, d) for f, d in sorted(got[1].items())]})
                return self.send(200, body.encode(), [("Content-Type", "application/json")])
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, rev, fname = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                if not self.authorized(repo):
                    return self.send(401)
                got = find(repo, rev, kind)
                if not got or fname not in got[1]:
                    return self.send(404, b"Entry not found", [("X-Error-Code", "EntryNotFound")])
                commit, files = got
                data = files[fname]
                if fname.endswith(".safetensors"):
                    h = hashlib.sha256(data).hexdigest()
                    blobs[h] = data
                    if repo == "test-org/flaky":
                        flaky_arm(h)
                    return self.send(302, b"", [("Location", "http://localhost:%d/cdn/%s" % (self.server.server_address[1], h)), ("X-Linked-Etag", '"%s"' % h),
                                                ("X-Linked-Size", str(len(data))), ("X-Repo-Commit", commit),
                                                ("ETag", '"%s"' % h)])
                etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                return self.send(200, data, [("ETag", '"%s"' % etag), ("X-Repo-Commit", commit)])
            self.send(404)

        def authorized(self, repo):
            return repo != "test-org/gated" or self.headers.get("Authorization") == "Bearer " + token

    flaky = {"armed": None}

    def flaky_arm(h):
        if not cut["done"]:
            flaky["armed"] = h

    def flaky_pending(h):
        if flaky["armed"] == h and not cut["done"]:
            cut["done"] = True
            return True
        return False

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
