#!/usr/bin/env python3
"""Derive fuzz_model's small seeds from a model stored by tinytemp.

    psql -XAt -c "SELECT encode(model, 'base64') FROM tinytemp.predictor_models
                  ORDER BY version LIMIT 1" | base64 -d > corpus/model/bootstrap.model
    test/fuzz/make_model_seeds.py corpus/model/bootstrap.model corpus/model

Reads the model (the layout of serialize() in src/model_codec.c, native
byte order; a format-3 model's runtime interval is kept as it is) and writes smaller valid models cut from it, which the fuzzer
mutates much faster than the 60 KB original, and truncated ones.
"""
import struct
import sys


def parse(data):
    magic, fmt, nfeatures, ntrees, depth = struct.unpack_from("=5I", data, 0)
    pos = 20
    (base,) = struct.unpack_from("=d", data, pos)
    pos += 8
    maps = []
    for _ in range(3):
        n, fallback = struct.unpack_from("=Id", data, pos)
        pos += 12
        entries = []
        for _ in range(n):
            (length,) = struct.unpack_from("=I", data, pos)
            pos += 4
            name = data[pos:pos + length]
            pos += length
            (code,) = struct.unpack_from("=d", data, pos)
            pos += 8
            entries.append((name, code))
        maps.append((fallback, entries))
    nsplits = ntrees * depth
    features = list(struct.unpack_from("=%di" % nsplits, data, pos))
    pos += 4 * nsplits
    values = list(struct.unpack_from("=%df" % nsplits, data, pos))
    pos += 4 * nsplits
    leaves = list(struct.unpack_from("=%df" % (ntrees << depth), data, pos))
    pos += 4 * (ntrees << depth)
    # Format 3 appends the runtime interval, which does not depend on the trees.
    tail = data[pos:]
    assert fmt >= 3 or not tail, "trailing bytes"
    return dict(header=(magic, fmt, nfeatures), base=base, maps=maps, ntrees=ntrees,
                depth=depth, features=features, values=values, leaves=leaves, tail=tail)


def build(m, ntrees, depth, maps):
    """The first ntrees trees of m, cut to their first depth levels."""
    out = struct.pack("=5I", *m["header"], ntrees, depth) + struct.pack("=d", m["base"])
    for fallback, entries in maps:
        out += struct.pack("=Id", len(entries), fallback)
        for name, code in entries:
            out += struct.pack("=I", len(name)) + name + struct.pack("=d", code)
    features, values, leaves = [], [], []
    for t in range(ntrees):
        features += m["features"][t * m["depth"]:t * m["depth"] + depth]
        values += m["values"][t * m["depth"]:t * m["depth"] + depth]
        leaves += m["leaves"][t << m["depth"]:(t << m["depth"]) + (1 << depth)]
    n = ntrees * depth
    return (out + struct.pack("=%di" % n, *features) + struct.pack("=%df" % n, *values)
            + struct.pack("=%df" % len(leaves), *leaves) + m["tail"])


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    m = parse(data)
    assert build(m, m["ntrees"], m["depth"], m["maps"]) == data, "does not rebuild"
    few = [(fallback, entries[:2]) for fallback, entries in m["maps"]]
    none = [(fallback, []) for fallback, _ in m["maps"]]
    seeds = {
        "one_tree.model": build(m, 1, m["depth"], m["maps"]),
        "two_trees_few_categories.model": build(m, 2, min(3, m["depth"]), few),
        "stump_no_categories.model": build(m, 1, 1, none),
    }
    seeds["truncated_header.model"] = data[:20]
    seeds["truncated_categories.model"] = data[:100]
    seeds["truncated_last_leaf.model"] = seeds["one_tree.model"][:-3]
    for name, blob in seeds.items():
        with open("%s/%s" % (outdir, name), "wb") as f:
            f.write(blob)
        print(name, len(blob))


if __name__ == "__main__":
    main()
