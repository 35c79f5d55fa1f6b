#!/usr/bin/env python3
"""tests/integration/pq_spec_reader.py: a second, minimal Parquet reader,
written from the format specification (apache/parquet-format: the Thrift
compact protocol, PLAIN, dictionary pages, RLE / bit-packed hybrid levels)
with the Python standard library only, to check independently that the
files witpipe's C writer produces are valid Parquet.

It shares no code with parquet/ and covers only what it must: flat columns,
data pages v1 and v2, dictionary pages, PLAIN / PLAIN_DICTIONARY /
RLE_DICTIONARY / RLE (booleans), UNCOMPRESSED and GZIP (snappy and zstd
are not in the standard library), page CRCs verified when present.

    pq_spec_reader.py FILE.parquet   prints {"num_rows", "columns", "rows"}
    as JSON: strings as strings, other byte arrays as {"hex": ...}, doubles
    that are not finite as "NaN" / "Infinity" / "-Infinity".
"""
import json
import math
import struct
import sys
import zlib

# Thrift compact protocol types.
T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_BINARY, T_LIST, T_SET, T_MAP, \
    T_STRUCT = range(13)


class ParquetError(Exception):
    pass


class Thrift:
    """Reads Thrift compact structs into {field id: value} dicts."""

    def __init__(self, buf, pos=0):
        self.buf = buf
        self.pos = pos

    def byte(self):
        if self.pos >= len(self.buf):
            raise ParquetError("thrift: truncated")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self):
        v = shift = 0
        while True:
            b = self.byte()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def zigzag(self):
        u = self.varint()
        return (u >> 1) ^ -(u & 1)

    def value(self, t):
        if t == T_TRUE:
            return True
        if t == T_FALSE:
            return False
        if t == T_BYTE:
            return struct.unpack("b", bytes([self.byte()]))[0]
        if t in (T_I16, T_I32, T_I64):
            return self.zigzag()
        if t == T_DOUBLE:
            v = struct.unpack("<d", self.buf[self.pos:self.pos + 8])[0]
            self.pos += 8
            return v
        if t == T_BINARY:
            n = self.varint()
            v = bytes(self.buf[self.pos:self.pos + n])
            if len(v) != n:
                raise ParquetError("thrift: truncated binary")
            self.pos += n
            return v
        if t in (T_LIST, T_SET):
            h = self.byte()
            n, et = h >> 4, h & 15
            if n == 15:
                n = self.varint()
            if et in (T_TRUE, T_FALSE):
                return [self.byte() == 1 for _ in range(n)]
            return [self.value(et) for _ in range(n)]
        if t == T_MAP:
            n = self.varint()
            if n == 0:
                return {}
            kv = self.byte()
            return {self.value(kv >> 4): self.value(kv & 15) for _ in range(n)}
        if t == T_STRUCT:
            return self.struct()
        raise ParquetError("thrift: unknown type %d" % t)

    def struct(self):
        out, last = {}, 0
        while True:
            h = self.byte()
            t = h & 15
            if t == T_STOP:
                return out
            delta = h >> 4
            fid = last + delta if delta else self.zigzag()
            last = fid
            out[fid] = self.value(t)


def rle_hybrid(buf, pos, end, bw, n):
    """n values of bit width bw from the RLE / bit-packed hybrid buf[pos:end]."""
    out = []
    vbytes = (bw + 7) // 8
    while len(out) < n:
        t = Thrift(buf, pos)
        h = t.varint()
        pos = t.pos
        if h & 1 == 0:
            v = int.from_bytes(buf[pos:pos + vbytes], "little")
            pos += vbytes
            out.extend([v] * (h >> 1))
        else:
            groups = h >> 1
            nbytes = groups * bw
            chunk = int.from_bytes(buf[pos:pos + nbytes], "little")
            pos += nbytes
            for i in range(groups * 8):
                out.append((chunk >> (i * bw)) & ((1 << bw) - 1))
        if pos > end:
            raise ParquetError("RLE run past its end")
    return out[:n]


def plain(buf, ptype, n, type_length):
    """n PLAIN values of physical type ptype from buf; returns (values, used)."""
    vals, pos = [], 0
    for i in range(n):
        if ptype == 0:  # BOOLEAN
            vals.append(bool(buf[i >> 3] >> (i & 7) & 1))
        elif ptype == 1:
            vals.append(struct.unpack_from("<i", buf, pos)[0])
            pos += 4
        elif ptype == 2:
            vals.append(struct.unpack_from("<q", buf, pos)[0])
            pos += 8
        elif ptype == 3:  # INT96: nanoseconds of the day, Julian day
            nanos, day = struct.unpack_from("<qi", buf, pos)
            vals.append((day - 2440588) * 86400 * 10**9 + nanos)
            pos += 12
        elif ptype == 4:
            vals.append(struct.unpack_from("<f", buf, pos)[0])
            pos += 4
        elif ptype == 5:
            vals.append(struct.unpack_from("<d", buf, pos)[0])
            pos += 8
        elif ptype == 6:
            (ln,) = struct.unpack_from("<I", buf, pos)
            vals.append(bytes(buf[pos + 4:pos + 4 + ln]))
            if len(vals[-1]) != ln:
                raise ParquetError("PLAIN byte array past the page")
            pos += 4 + ln
        elif ptype == 7:
            vals.append(bytes(buf[pos:pos + type_length]))
            pos += type_length
        else:
            raise ParquetError("unknown physical type %d" % ptype)
    return vals, pos


def decompress(codec, data, size):
    if codec == 0:
        out = data
    elif codec == 2:  # GZIP, possibly several members
        out, rest = b"", data
        while rest:
            d = zlib.decompressobj(16 + 15)
            out += d.decompress(rest)
            rest = d.unused_data
    else:
        raise ParquetError("codec %d is not in the standard library" % codec)
    if len(out) != size:
        raise ParquetError("page decompressed to %d bytes, header says %d" % (len(out), size))
    return out


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != b"PAR1" or buf[-4:] != b"PAR1":
        raise ParquetError("no PAR1 magic")
    (flen,) = struct.unpack("<I", buf[-8:-4])
    meta = Thrift(buf, len(buf) - 8 - flen).struct()
    schema = meta[2]
    root = schema[0]
    leaves = schema[1:]
    if root.get(5) != len(leaves) or any(el.get(5, 0) for el in leaves):
        raise ParquetError("nested schema: this reader reads flat files only")
    names = [el[4].decode() for el in leaves]
    is_string = [el.get(6) == 0 or 1 in el.get(10, {}) for el in leaves]
    columns = [[] for _ in leaves]
    for rg in meta[4]:
        nrows = rg[3]
        for ci, cc in enumerate(rg[1]):
            md = cc[3]
            el = leaves[ci]
            ptype, codec, optional = md[1], md[4], el.get(3, 0) == 1
            if md[3] != [el[4]] or ptype != el[1]:
                raise ParquetError("column chunk %d does not match the schema" % ci)
            pos = md.get(11, md[9]) if md.get(11, 0) > 0 else md[9]
            end = pos + md[7]
            dictionary, got = None, []
            while len(got) < nrows:
                if pos >= end:
                    raise ParquetError("column chunk ends early")
                t = Thrift(buf, pos)
                ph = t.struct()
                pos = t.pos
                data = buf[pos:pos + ph[3]]
                pos += ph[3]
                if 4 in ph and (zlib.crc32(data) & 0xFFFFFFFF) != (ph[4] & 0xFFFFFFFF):
                    raise ParquetError("page CRC mismatch in column %s" % names[ci])
                if ph[1] == 2:
                    page = decompress(codec, data, ph[2])
                    dictionary, _ = plain(page, ptype, ph[7][1], el.get(2, 0))
                    continue
                if ph[1] == 0:
                    dh = ph[5]
                    n, enc = dh[1], dh[2]
                    page = decompress(codec, data, ph[2])
                    p = 0
                    if optional:
                        (ln,) = struct.unpack_from("<I", page, 0)
                        defs = rle_hybrid(page, 4, 4 + ln, 1, n)
                        p = 4 + ln
                    else:
                        defs = [1] * n
                elif ph[1] == 3:
                    dh = ph[8]
                    n, enc, dl, rl = dh[1], dh[4], dh[5], dh[6]
                    levels = data[:rl + dl]
                    body = data[rl + dl:]
                    if dh.get(7, True) and codec != 0:
                        body = decompress(codec, body, ph[2] - rl - dl)
                    page = bytes(levels) + bytes(body)
                    defs = rle_hybrid(page, rl, rl + dl, 1, n) if optional else [1] * n
                    p = rl + dl
                else:
                    continue
                nn = sum(defs)
                body = page[p:]
                if enc == 0:
                    vals, _ = plain(body, ptype, nn, el.get(2, 0))
                elif enc in (2, 8):
                    if dictionary is None:
                        raise ParquetError("dictionary page missing")
                    idx = rle_hybrid(body, 1, len(body), body[0], nn) if nn else []
                    vals = [dictionary[i] for i in idx]
                elif enc == 3 and ptype == 0:
                    (ln,) = struct.unpack_from("<I", body, 0)
                    vals = [bool(v) for v in rle_hybrid(body, 4, 4 + ln, 1, nn)]
                else:
                    raise ParquetError("encoding %d not in this reader" % enc)
                it = iter(vals)
                got.extend(next(it) if d else None for d in defs)
            if len(got) != nrows:
                raise ParquetError("column %s: %d values for %d rows" % (names[ci], len(got), nrows))
            columns[ci].extend(got)
    if any(len(c) != meta[3] for c in columns):
        raise ParquetError("row count differs from the footer's")
    rows = []
    for r in range(meta[3]):
        row = []
        for ci, col in enumerate(columns):
            v = col[r]
            if isinstance(v, bytes):
                v = v.decode("utf-8") if is_string[ci] else {"hex": v.hex()}
            elif isinstance(v, float) and not math.isfinite(v):
                v = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
            row.append(v)
        rows.append(row)
    return {"num_rows": meta[3], "columns": names, "rows": rows}


if __name__ == "__main__":
    try:
        json.dump(read(sys.argv[1]), sys.stdout)
    except (ParquetError, struct.error, IndexError, KeyError, zlib.error) as e:
        print("pq_spec_reader: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        sys.exit(1)
