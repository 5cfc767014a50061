"""wire.py - build remote-write requests and agent batch envelopes in pure Python.

The integration tests are standard library only, so this writes the bytes by
hand: protobuf fields (varints, length-delimited, fixed64), a snappy block
made of literals only (valid snappy, just not smaller), and a zstd frame of
raw blocks (valid zstd, not compressed). The collector decodes them exactly
as it decodes Prometheus's and the agent's. Also a minimal Kafka
CreateTopics (v2) request, since kcat cannot create a topic with a given
number of partitions.
"""
import socket
import struct


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def label(name, value):
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(ts_ms, value):
    return (varint(1 << 3 | 1) + struct.pack("<d", value) + varint(2 << 3 | 0) + varint(ts_ms))


def timeseries(labels, samples):
    """labels: dict; samples: [(ts_ms, value)]."""
    body = b"".join(field_bytes(1, label(k, v)) for k, v in labels.items())
    return body + b"".join(field_bytes(2, sample(t, v)) for t, v in samples)


def write_request(series):
    """series: [(labels dict, [(ts_ms, value)])] -> protobuf WriteRequest bytes."""
    return b"".join(field_bytes(1, timeseries(l, s)) for l, s in series)


def snappy_literal(data):
    """A snappy block holding data as literals of at most 64 KiB."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)  # 2-byte length follows
            out += struct.pack("<H", n)
        out += chunk
    return bytes(out)


def zstd_raw(data):
    """One zstd frame of raw blocks with the content size in the header."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out.append(0xA0)  # 4-byte content size, single segment
    out += struct.pack("<I", len(data))
    blocks = [data[i:i + 131072] for i in range(0, len(data), 131072)] or [b""]
    for i, b in enumerate(blocks):
        last = 1 if i == len(blocks) - 1 else 0
        hdr = last | (0 << 1) | (len(b) << 3)
        out += struct.pack("<I", hdr)[:3] + b
    return bytes(out)


def batch_envelope(agent_id, tenant, seq, series, created_ms=0):
    """A vigil.v1.Batch with a MetricBatch payload, in a zstd frame."""
    mb = b"".join(field_bytes(1, timeseries(l, s)) for l, s in series)
    b = field_bytes(1, agent_id.encode()) + field_bytes(2, b"it-node")
    b += field_bytes(3, tenant.encode()) + varint(4 << 3) + varint(seq)
    b += varint(5 << 3) + varint(created_ms) + field_bytes(10, mb)
    return zstd_raw(b)


def kafka_create_topic(bootstrap, topic, partitions, timeout=10):
    """CreateTopics v2 against the first bootstrap broker; an existing topic is fine."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)

    def kstr(s):
        return struct.pack(">h", len(s)) + s.encode()

    body = struct.pack(">i", 1) + kstr(topic) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">i", 30000) + b"\x00"
    req = struct.pack(">hhi", 19, 2, 1) + kstr("vigil-it") + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        n = struct.unpack(">i", _recv(s, 4))[0]
        resp = _recv(s, n)
    # correlation id, throttle ms, topics count, name, error code
    off = 4 + 4 + 4
    nl = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + nl
    err = struct.unpack(">h", resp[off:off + 2])[0]
    if err not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS
        raise AssertionError("CreateTopics %s failed with Kafka error %d" % (topic, err))


def _recv(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise AssertionError("broker closed the connection")
        buf += c
    return buf


def audit_record(ts_ms, user_id, action, result, file_id, offset, original="{}",
                 session_id="s1", resource="/r", ip_address="10.0.0.1"):
    """A vigil.v1.AuditRecord (fields 1..10 as in envelope.proto)."""
    b = varint(1 << 3) + varint(ts_ms)
    for num, s in ((2, user_id), (3, session_id), (4, action), (5, resource), (6, result),
                   (7, ip_address), (8, original), (9, file_id)):
        b += field_bytes(num, s.encode())
    return b + varint(10 << 3) + varint(offset)


def audit_envelope(agent_id, tenant, seq, records, created_ms=0):
    """A vigil.v1.Batch with an AuditBatch payload (field 11), in a zstd frame.
    records: bytes from audit_record."""
    ab = b"".join(field_bytes(1, r) for r in records)
    b = field_bytes(1, agent_id.encode()) + field_bytes(2, b"it-node")
    b += field_bytes(3, tenant.encode()) + varint(4 << 3) + varint(seq)
    b += varint(5 << 3) + varint(created_ms) + field_bytes(11, ab)
    return zstd_raw(b)
