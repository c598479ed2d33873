#!/usr/bin/env python3
"""Derive fuzz_model's small seeds from a model stored by tinytemp.

    psql -XAt -c "SELECT encode(model, 'base64') FROM tinytemp.predictor_models
                  ORDER BY version LIMIT 1" | base64 -d > /tmp/bootstrap.model
    test/fuzz/make_model_seeds.py /tmp/bootstrap.model corpus/model

Reads the model (the layout of serialize() in src/model_codec.c, native
byte order: a format-7 model's overheads after what format 6 has, for the
model and then each job type's model in order a uint32 flag and, when it is
1, the float8 log overheads of NULL and unseen models and of each model of
its map; a format-6 model's runtimes of bare requests after what format 5
has, the same flags and, when 1, three float8 log quantiles; a format-5
model's history of requests after what format 4 has; a format-4 model's
codes of unseen categories, linear weights, interval and job types' models;
a format-3 model's interval) and writes smaller valid models cut from it,
which the fuzzer mutates much faster than the original (hundreds of KB in
formats 4 to 7), and truncated ones, each named after its format
(format7_one_tree.model...).  From a model of format 7 it also writes the
same cuts in format 6, without the overheads (format6_*), from one of
format 6 or 7 in format 5, without the section of bare requests either
(format5_*), and from one of format 5 to 7 in format 4, without the history
either (format4_*).  The cuts keep only a few of its history keys (the
first ones, so still in increasing order), in formats 6 and 7 the flags of
the model and of the job types' models they keep, in order, and in format 7
the overheads of the models their maps keep; format6_*_bare_unknown and
format7_*_overheads_unknown have every flag of their section 0.  Seeds of
the same name in the output directory are overwritten: to add only some,
write to a scratch directory and copy them.
"""
import struct
import sys

NLINEAR = 17  # NFEATURES - 1 in src/model_codec.h: the weights of formats 4 to 7
HISTORY_LEVELS = 2  # src/model_codec.h


def parse_body(data, pos, ntrees, depth, linear):
    """A model's or job type's body: base, maps, weights, trees."""
    (base,) = struct.unpack_from("=d", data, pos)
    pos += 8
    maps = []
    for _ in range(3):
        n, fallback = struct.unpack_from("=Id", data, pos)
        pos += 12
        if linear:  # formats 4 to 7: the code of unseen categories after that of NULL
            fallback = data[pos - 8:pos + 8]
            pos += 8
        else:
            fallback = data[pos - 8:pos]
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
    weights = b""
    if linear:
        weights = data[pos:pos + 8 * NLINEAR]
        pos += 8 * NLINEAR
    nsplits = ntrees * depth
    features = list(struct.unpack_from("=%di" % nsplits, data, pos))
    pos += 4 * nsplits
    values = list(struct.unpack_from("=%df" % nsplits, data, pos))
    pos += 4 * nsplits
    leaves = list(struct.unpack_from("=%df" % (ntrees << depth), data, pos))
    pos += 4 * (ntrees << depth)
    return dict(base=base, maps=maps, weights=weights, ntrees=ntrees, depth=depth,
                features=features, values=values, leaves=leaves), pos


def parse(data):
    magic, fmt, nfeatures, ntrees, depth = struct.unpack_from("=5I", data, 0)
    body, pos = parse_body(data, 20, ntrees, depth, fmt >= 4)
    interval = b""
    if fmt >= 3:
        (n,) = struct.unpack_from("=I", data, pos)
        end = pos + 4 + 8 * (n - 1) + 16 * n
        interval = data[pos:end]
        pos = end
    parts = []
    if fmt >= 4:
        (nparts,) = struct.unpack_from("=I", data, pos)
        pos += 4
        for _ in range(nparts):
            (length,) = struct.unpack_from("=I", data, pos)
            name = data[pos + 4:pos + 4 + length]
            pos += 4 + length
            ptrees, pdepth = struct.unpack_from("=2I", data, pos)
            part, pos = parse_body(data, pos + 8, ptrees, pdepth, True)
            parts.append((name, part))
    history = None
    if fmt >= 5:
        # Per level its shrinkage, then its low and high bounds (float8), then
        # its training rows (uint32); then n, n keys, n means, n counts.
        levels = data[pos:pos + HISTORY_LEVELS * (3 * 8 + 4)]
        pos += len(levels)
        (n,) = struct.unpack_from("=I", data, pos)
        pos += 4
        keys = list(struct.unpack_from("=%dQ" % n, data, pos))
        pos += 8 * n
        means = list(struct.unpack_from("=%dd" % n, data, pos))
        pos += 8 * n
        counts = list(struct.unpack_from("=%dI" % n, data, pos))
        pos += 4 * n
        history = dict(levels=levels, keys=keys, means=means, counts=counts)
    bare = None
    if fmt >= 6:
        # For the model, then each job type's model: a flag (uint32, 0 or 1)
        # and, when it is 1, three log quantiles (float8); None when 0.
        bare = []
        for _ in range(1 + len(parts)):
            (known,) = struct.unpack_from("=I", data, pos)
            pos += 4
            assert known in (0, 1), "a flag of bare requests that is neither 0 nor 1"
            if known:
                bare.append(struct.unpack_from("=3d", data, pos))
                pos += 24
            else:
                bare.append(None)
    overheads = None
    if fmt == 7:
        # For the model, then each job type's model: a flag (uint32, 0 or 1)
        # and, when it is 1, the log overheads (float8) of NULL and of unseen
        # models, then of each model in its map; None when 0.
        overheads = []
        for body_ in [body] + [p for _, p in parts]:
            (has,) = struct.unpack_from("=I", data, pos)
            pos += 4
            assert has in (0, 1), "a flag of overheads that is neither 0 nor 1"
            if has:
                n = 2 + len(body_["maps"][1][1])
                overheads.append(list(struct.unpack_from("=%dd" % n, data, pos)))
                pos += 8 * n
            else:
                overheads.append(None)
    assert pos == len(data), "trailing bytes"
    return dict(header=(magic, fmt, nfeatures), body=body, interval=interval, parts=parts,
                history=history, bare=bare, overheads=overheads)


def build_body(b, ntrees, depth, maps):
    """The body b with its first ntrees trees, cut to their first depth levels."""
    out = struct.pack("=d", b["base"])
    for fallback, entries in maps:
        out += struct.pack("=I", len(entries)) + fallback
        for name, code in entries:
            out += struct.pack("=I", len(name)) + name + struct.pack("=d", code)
    out += b["weights"]
    features, values, leaves = [], [], []
    for t in range(ntrees):
        features += b["features"][t * b["depth"]:t * b["depth"] + depth]
        values += b["values"][t * b["depth"]:t * b["depth"] + depth]
        leaves += b["leaves"][t << b["depth"]:(t << b["depth"]) + (1 << depth)]
    n = ntrees * depth
    return (out + struct.pack("=%di" % n, *features) + struct.pack("=%df" % n, *values)
            + struct.pack("=%df" % len(leaves), *leaves))


def build(m, ntrees, depth, cut_maps, nparts, nhistory=None, fmt=None, bare_known=True,
          overheads_known=True):
    """m with at most ntrees trees of at most depth levels in each body, its
    maps cut by cut_maps, its first nparts job types' models, in formats 5
    to 7 its first nhistory history keys (None: all), in formats 6 and 7 the
    runtimes of bare requests of the model and of those job types' models
    (every flag 0 unless bare_known) and in format 7 their overheads, cut
    as their maps are (every flag 0 unless overheads_known); in format fmt
    (None: m's), 6 for a model of format 7 dropping its overheads, 5
    dropping its bare requests as well, 4 its history too."""
    magic, own, nfeatures = m["header"]
    fmt = own if fmt is None else fmt
    assert fmt == own or (own >= 5 and 4 <= fmt < own), "can only drop the last sections"
    b = m["body"]
    t, d = min(ntrees, b["ntrees"]), min(depth, b["depth"])
    out = struct.pack("=5I", magic, fmt, nfeatures, t, d) + build_body(b, t, d, cut_maps(b["maps"]))
    out += m["interval"]
    if fmt >= 4:
        parts = m["parts"][:nparts]
        out += struct.pack("=I", len(parts))
        for name, p in parts:
            t, d = min(ntrees, p["ntrees"]), min(depth, p["depth"])
            out += struct.pack("=I", len(name)) + name + struct.pack("=2I", t, d)
            out += build_body(p, t, d, cut_maps(p["maps"]))
    if fmt >= 5:
        h = m["history"]
        n = len(h["keys"]) if nhistory is None else min(nhistory, len(h["keys"]))
        out += h["levels"] + struct.pack("=I", n)
        out += struct.pack("=%dQ" % n, *h["keys"][:n]) + struct.pack("=%dd" % n, *h["means"][:n])
        out += struct.pack("=%dI" % n, *h["counts"][:n])
    if fmt >= 6:
        for q in m["bare"][:1 + len(parts)]:
            if q is None or not bare_known:
                out += struct.pack("=I", 0)
            else:
                out += struct.pack("=I3d", 1, *q)
    if fmt == 7:
        bodies = [b] + [p for _, p in parts]
        for o, body in zip(m["overheads"], bodies):
            if o is None or not overheads_known:
                out += struct.pack("=I", 0)
            else:
                n = len(cut_maps(body["maps"])[1][1])
                out += struct.pack("=I%dd" % (2 + n), 1, *o[:2 + n])
    return out


def seeds_of(m, data, fmt):
    """The seeds of m in format fmt (m's own, or an earlier one from 4 for a
    model of format 5 to 7), data being m in that format, uncut."""
    deepest = max([m["body"]["depth"]] + [p["depth"] for _, p in m["parts"]])
    keep = lambda maps: maps
    few = lambda maps: [(fallback, entries[:2]) for fallback, entries in maps]
    none = lambda maps: [(fallback, []) for fallback, _ in maps]
    cut = lambda *args, nhistory=None, bare_known=True, overheads_known=True: build(
        m, *args, nhistory=nhistory, fmt=fmt, bare_known=bare_known,
        overheads_known=overheads_known)
    seeds = {
        "one_tree.model": cut(1, deepest, keep, len(m["parts"]), nhistory=4),
        "two_trees_few_categories.model": cut(2, 3, few, 2, nhistory=3),
        "stump_no_categories.model": cut(1, 1, none, 0, nhistory=0),
        "stumps_one_job_type.model": cut(1, 1, none, 1, nhistory=1),
    }
    seeds["truncated_header.model"] = data[:20]
    seeds["truncated_categories.model"] = data[:100]
    if fmt >= 5:
        # A history of a few keys, and one cut in its last count.
        seeds["stump_history_keys.model"] = cut(1, 1, none, 0, nhistory=8)
        one = seeds["one_tree.model"]
        history_end = len(build(m, 1, deepest, keep, len(m["parts"]), nhistory=4, fmt=5))
        seeds["truncated_history.model"] = one[:history_end - 3]
    if fmt == 6:
        # Every flag 0, and a cut in the last quantile (or flag) of the last part.
        seeds["stumps_bare_unknown.model"] = cut(1, 1, none, 1, nhistory=1, bare_known=False)
        seeds["truncated_bare.model"] = seeds["one_tree.model"][:-3]
    if fmt == 7:
        # Every flag 0, and a cut in the last overhead (or flag) of the last part.
        seeds["stumps_overheads_unknown.model"] = cut(1, 1, none, 1, nhistory=1,
                                                      overheads_known=False)
        seeds["truncated_overheads.model"] = seeds["one_tree.model"][:-3]
    if fmt < 5:
        seeds["truncated_last_leaf.model"] = seeds["one_tree.model"][:-3]
    return seeds


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    m = parse(data)
    deepest = max([m["body"]["depth"]] + [p["depth"] for _, p in m["parts"]])
    most = max([m["body"]["ntrees"]] + [p["ntrees"] for _, p in m["parts"]])
    keep = lambda maps: maps
    assert build(m, most, deepest, keep, len(m["parts"])) == data, "does not rebuild"
    own = m["header"][1]
    for fmt in (list(range(own, 3, -1)) if own >= 5 else [own]):
        whole = build(m, most, deepest, keep, len(m["parts"]), fmt=fmt)
        if fmt != own:
            assert parse(whole)["header"][1] == fmt, "the format-%d form does not parse" % fmt
        prefix = "format%d_" % fmt
        for name, blob in seeds_of(m, whole, fmt).items():
            with open("%s/%s%s" % (outdir, prefix, name), "wb") as f:
                f.write(blob)
            print(prefix + name, len(blob))


if __name__ == "__main__":
    main()
