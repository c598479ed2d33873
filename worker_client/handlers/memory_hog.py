#!/usr/bin/python3
"""A demo handler for tinytemp-worker: allocates params.mb megabytes.

It touches every page of what it allocates, one megabyte at a time, so the
memory is really used: a job whose memory_mb is below params.mb is killed by
the kernel at its cgroup's limit, and the worker fails the attempt with
"out of memory: limit N MB".  Under the limit it prints what it allocated.
"""
import json
import sys

job = json.load(sys.stdin)
mb = int((job.get("params") or {}).get("mb", 64))
chunks = []
for _ in range(mb):
    chunks.append(bytearray(1024 * 1024))
print(json.dumps({"allocated_mb": mb}))
