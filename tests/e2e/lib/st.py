"""Safetensors checks for the end-to-end scripts (tests/e2e/*.sh: st() in lib/harness.sh):
  names FILE                 every tensor name, sorted
  layout FILE                every tensor's name and shape, sorted by name
  shape FILE NAME            a tensor's shape
  same A B PREFIXES          every tensor of A named PREFIX* (comma-separated prefixes) is in B, byte for byte
  differ A B PREFIX          every tensor of A named PREFIX* changed in B (norm weights are not required to)
  close A B PREFIX TOL       every tensor of A named PREFIX* is in B with the same shape, its F32/BF16 values within
                             TOL of B's (relative to the largest magnitude of A's tensor)"""
import json, struct, sys
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
if sys.argv[1] == "names":
    print("\n".join(sorted(load(sys.argv[2]))))
elif sys.argv[1] == "layout":
    t = load(sys.argv[2])
    print("\n".join(f"{k} {t[k][1]}" for k in sorted(t)))
elif sys.argv[1] == "shape":
    print(load(sys.argv[2])[sys.argv[3]][1])
elif sys.argv[1] == "same":  # every tensor named PREFIX* equal
    a, b = load(sys.argv[2]), load(sys.argv[3])
    ks = [k for k in a if k.startswith(tuple(sys.argv[4].split(",")))]
    sys.exit(not (ks and all(k in b and a[k] == b[k] for k in ks)))
elif sys.argv[1] == "differ":  # every tensor named PREFIX* changed
    a, b = load(sys.argv[2]), load(sys.argv[3])
    ks = [k for k in a if k.startswith(sys.argv[4])]
    sys.exit(not (ks and all(k in b and a[k][2] != b[k][2] for k in ks if "norm" not in k)))
elif sys.argv[1] == "close":  # values within a relative tolerance, F32 or BF16 either side
    def vals(t):
        dt, shape, raw = t
        if dt == "F32": return list(struct.unpack("<%df" % (len(raw) // 4), raw))
        if dt == "BF16": return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
        raise SystemExit("close: %s tensors are not compared" % dt)
    a, b = load(sys.argv[2]), load(sys.argv[3])
    ks = [k for k in a if k.startswith(sys.argv[4])]
    tol = float(sys.argv[5])
    ok = bool(ks)
    for k in ks:
        if k not in b or a[k][1] != b[k][1]: ok = False; break
        x, y = vals(a[k]), vals(b[k]); m = max(abs(v) for v in x) or 1.0
        if max(abs(p - q) for p, q in zip(x, y)) > tol * m: ok = False; print("differs:", k, file=sys.stderr); break
    sys.exit(not ok)
