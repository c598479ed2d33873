#!/usr/bin/python3
"""A CPU-bound demo "training" handler for tinytemp-worker.

Trains a logistic-regression model with mini-batch SGD, in pure Python, on a
synthetic data set drawn from a seed.  No network, no GPU, nothing outside
Debian's python3.

Input: the job as JSON on stdin (tinytemp-worker's contract), with these
fields (and TINYTEMP_ATTEMPT, TINYTEMP_CHECKPOINT in the environment):
  dataset_size  samples (default 2000, at most 200000)
  epochs        passes over the data (default 5)
  batch_size    mini-batch size (default 32)
  params.features        input dimension (default 16)
  params.learning_rate   SGD step (default 0.1)
  params.seed            data and init seed (default: the job id)
  params.fail_attempts   fail (exit 3) while the attempt is at most this, to
                         show retries and dead letters: at the start, or
  params.fail_after_epoch  when given, only once epoch N is done (at once
                         when the attempt resumed from a checkpoint at or past
                         epoch N; after the last epoch when N is past it)
  checkpoint    {"epoch": N, "weights": [w_1, ..., w_features, bias]}: resume
                after epoch N (the job's checkpoint column, else
                TINYTEMP_CHECKPOINT); one of another shape is ignored.

Output: after each epoch, a progress line {"epoch": ..., "loss": ...} (the
worker sends the latest as progress with its heartbeat), a metrics line
{"metrics": {"loss": L, "accuracy": A}, "step": N} with the loss and the
accuracy on the training set (the worker sends them with
tinytemp_report_metrics, to tinytemp.job_metrics and tinytemp.runs) and a
checkpoint line {"checkpoint": {"epoch": N, "weights": [...]}} (the worker
saves the latest with tinytemp_checkpoint, at most once per heartbeat and
before it acks or fails the job, and the next attempt resumes from it); then
the result as the last line, with "resumed_from_epoch" (0 for a fresh
start).  SIGTERM stops it between batches with exit status 143.
"""
import json
import math
import os
import random
import signal
import sys
import time

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def make_data(rng, n, d):
    true_w = [rng.gauss(0, 1) for _ in range(d)]
    data = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in range(d)]
        z = sum(a * b for a, b in zip(true_w, x)) + rng.gauss(0, 0.5)
        data.append((x, 1.0 if z > 0 else 0.0))
    return data


def sigmoid(z):
    if z < -30:
        return 0.0
    if z > 30:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def evaluate(w, b, data):
    loss = 0.0
    correct = 0
    for x, y in data:
        p = sigmoid(sum(a * c for a, c in zip(w, x)) + b)
        p = min(max(p, 1e-12), 1 - 1e-12)
        loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
        correct += (p >= 0.5) == (y == 1.0)
    return loss / len(data), correct / len(data)


def main():
    signal.signal(signal.SIGTERM, on_term)
    job = json.load(sys.stdin)
    params = job.get("params") or {}
    attempt = int(os.environ.get("TINYTEMP_ATTEMPT", job.get("attempts") or 1))

    fail_attempts = int(params.get("fail_attempts", 0))
    fail_after_epoch = params.get("fail_after_epoch")
    failing = attempt <= fail_attempts
    if failing and fail_after_epoch is None:
        print(f"simulated failure on attempt {attempt} (params.fail_attempts={fail_attempts})",
              file=sys.stderr)
        return 3

    n = min(int(job.get("dataset_size") or 2000), 200000)
    epochs = int(job.get("epochs") or 5)
    if fail_after_epoch is not None:
        fail_after_epoch = int(fail_after_epoch)
    fail_epoch = min(fail_after_epoch, epochs) if failing else None
    batch = int(job.get("batch_size") or 32)
    d = int(params.get("features", 16))
    lr = float(params.get("learning_rate", 0.1))
    seed = params.get("seed", job.get("id", 0))

    rng = random.Random(seed)
    data = make_data(rng, n, d)
    w = [0.0] * d
    b = 0.0
    start_epoch = 0
    # The stdin row has it whatever its size; the environment only under 32 KiB.
    state = job.get("checkpoint")
    if state is None and os.environ.get("TINYTEMP_CHECKPOINT"):
        state = json.loads(os.environ["TINYTEMP_CHECKPOINT"])
    if state is not None:
        weights = state.get("weights") if isinstance(state, dict) else None
        if isinstance(weights, list) and len(weights) == d + 1:
            w, b = [float(v) for v in weights[:d]], float(weights[d])
            start_epoch = int(state.get("epoch", 0))
            print(f"resuming after epoch {start_epoch}", file=sys.stderr)
        else:
            print(f"ignoring a checkpoint that is not {{\"epoch\": N, \"weights\": [{d + 1} numbers]}}",
                  file=sys.stderr)

    def simulated_failure(epoch):
        print(f"simulated failure on attempt {attempt} after epoch {epoch} "
              f"(params.fail_attempts={fail_attempts}, params.fail_after_epoch={fail_after_epoch})",
              file=sys.stderr)
        return 3

    if failing and start_epoch >= fail_epoch:
        return simulated_failure(start_epoch)

    started = time.monotonic()
    loss, acc = evaluate(w, b, data)
    for epoch in range(start_epoch + 1, epochs + 1):
        rng.shuffle(data)
        for i in range(0, n, batch):
            if stop:
                print(f"stopped by SIGTERM in epoch {epoch}", file=sys.stderr)
                return 143
            chunk = data[i:i + batch]
            gw = [0.0] * d
            gb = 0.0
            for x, y in chunk:
                err = sigmoid(sum(a * c for a, c in zip(w, x)) + b) - y
                for k in range(d):
                    gw[k] += err * x[k]
                gb += err
            scale = lr / len(chunk)
            w = [a - scale * g for a, g in zip(w, gw)]
            b -= scale * gb
        loss, acc = evaluate(w, b, data)
        print(json.dumps({"epoch": epoch, "epochs": epochs, "loss": round(loss, 6),
                          "accuracy": round(acc, 4)}), flush=True)
        print(json.dumps({"metrics": {"loss": round(loss, 6), "accuracy": round(acc, 4)},
                          "step": epoch}), flush=True)
        if all(math.isfinite(v) for v in w) and math.isfinite(b):
            print(json.dumps({"checkpoint": {"epoch": epoch, "weights": w + [b]}}), flush=True)
        if failing and epoch == fail_epoch:
            return simulated_failure(epoch)

    print(json.dumps({"loss": round(loss, 6), "accuracy": round(acc, 4), "epochs": epochs,
                      "samples": n, "features": d, "resumed_from_epoch": start_epoch,
                      "train_seconds": round(time.monotonic() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
