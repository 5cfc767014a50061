#!/usr/bin/env python3
"""chunk_kinds - where a Vigil block's chunk bytes go, by the kind of value.

The bytes-per-sample goal needs to know which values the chunks encode
badly. The block's index is not needed for that: every XOR chunk starts with
its sample count and its first value as 64 raw bits, and a compact
(scaled-integer, chunk_int.h) chunk with its count and first value as an
integer and a decimal scale, so each chunk is classed by that value
(integer, two decimals like node_exporter's CPU seconds, other float) and
its encoding, and its framed size (length varint + bytes + CRC) summed per
class.

  bench/ingest_vs_vm_prom/chunk_kinds.py DATA_DIR/blocks/TENANT/ULID

(run.py --keep DIR leaves the data dir under DIR.)
"""
import collections
import glob
import struct
import sys


def uvarint(b, i):
    x = s = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7f) << s
        s += 7
        if c < 0x80:
            return x, i


def kind(v):
    if v != v or v in (float("inf"), float("-inf")):
        return "other float"
    if v == int(v):
        return "integer"
    if round(v * 100) / 100 == v:
        return "2 decimals"
    return "other float"


def zigzag(u):
    return (u >> 1) ^ -(u & 1)


def compact_head(d):
    """Samples and first value of a scaled-integer chunk (chunk_int.h)."""
    n, j = uvarint(d, 3)
    flags = d[j]
    j += 1
    _, j = uvarint(d, j)  # t0
    if n > 1:
        _, j = uvarint(d, j)  # tmin
        if flags & 0x20:
            _, j = uvarint(d, j)
        j += 1  # tw
    k0, j = uvarint(d, j)
    return n, zigzag(k0) / 10.0 ** (flags & 15)


def classify(d):
    """(encoding, samples, first value) of chunk bytes d."""
    if len(d) > 2 and d[0] == 0 and d[1] == 0:
        n, v = compact_head(d)
        return "int", n, v
    _, j = uvarint(d, 2)  # count, then the first timestamp
    v = struct.unpack(">d", d[j:j + 8])[0] if j + 8 <= len(d) else 0.0
    return "xor", d[0] << 8 | d[1], v


def main():
    acc = collections.defaultdict(lambda: [0, 0, 0])  # bytes, samples, chunks
    for seg in sorted(glob.glob(sys.argv[1] + "/chunks/*")):
        with open(seg, "rb") as f:
            b = f.read()
        i = 8  # segment header
        while i < len(b):
            start = i
            n, i = uvarint(b, i)
            d = b[i:i + n]
            i += n + 4
            enc, ns, v = classify(d)
            for key in ((kind(v), ""), (kind(v), enc)):
                a = acc[key]
                a[0] += i - start
                a[1] += ns
                a[2] += 1
    tb = sum(a[0] for k, a in acc.items() if not k[1])
    ts = sum(a[1] for k, a in acc.items() if not k[1]) or 1
    for k, (by, sa, ch) in sorted(acc.items()):
        print("%-16s %5.1f%% of samples %5.1f%% of bytes %.2f B/sample (%d chunks)" % (
            (k[0] + (" / " + k[1] if k[1] else "")), 100.0 * sa / ts, 100.0 * by / (tb or 1), by / (sa or 1), ch))
    print("%-16s %.2f B/sample of chunks" % ("all", tb / ts))


if __name__ == "__main__":
    main()
