#!/usr/bin/python3
"""A demo handler for tinytemp-worker: reports the GPUs the worker gave the job.

It reads the job from stdin, holds its GPUs for params.hold_s seconds (default
1, so that jobs started together overlap), and prints as its result the
indices it was given: CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and
TINYTEMP_GPUS, as the worker set them.
"""
import json
import os
import sys
import time

job = json.load(sys.stdin)
time.sleep(float((job.get("params") or {}).get("hold_s", 1)))
print(json.dumps({
    "job": job.get("id"),
    "gpus": job.get("gpus"),
    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "NVIDIA_VISIBLE_DEVICES": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
    "TINYTEMP_GPUS": os.environ.get("TINYTEMP_GPUS"),
}))
