#!/usr/bin/env python3
"""HTTP streaming against NDJSON on one running laded: time to first token
and tokens/s of the same greedy generations, alternated, through the Unix
socket; prints one JSON object with the medians and the HTTP/NDJSON ratios.
Standard library only. Not run in CI.

    bench/http_ratio.py SOCKET [--prompt TEXT] [--max-tokens N] [--runs N]
"""
import argparse
import json
import socket
import statistics
import time


def ndjson(path, prompt, max_tokens):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    t0 = time.monotonic()
    req = {"id": 1, "op": "generate", "prompt": prompt, "max_tokens": max_tokens}
    s.sendall((json.dumps(req) + "\n").encode())
    first = None
    for line in f:
        ev = json.loads(line)
        if ev["event"] == "token" and first is None and ev["text"]:
            first = time.monotonic()
        if ev["event"] == "done":
            end = time.monotonic()
            n = ev["stats"]["generated_tokens"]
            break
        if ev["event"] == "error":
            raise RuntimeError(ev)
    s.close()
    return first - t0, (n - 1) / (end - first) if end > first else 0.0


def http(path, prompt, max_tokens):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    t0 = time.monotonic()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: lade\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    status = f.readline()
    if b" 200 " not in status:
        raise RuntimeError(status)
    while f.readline() not in (b"\r\n", b""):
        pass
    first = None
    n = 0
    while True:
        size = int(f.readline(), 16)
        if size == 0:
            break
        chunk = f.read(size)
        f.readline()
        for ev in chunk.split(b"\n\n"):
            if not ev.startswith(b"data: "):
                continue
            if ev == b"data: [DONE]":
                end = time.monotonic()
                continue
            o = json.loads(ev[6:])
            if o.get("usage"):
                n = o["usage"]["completion_tokens"]
            elif o["choices"] and o["choices"][0]["text"] and first is None:
                first = time.monotonic()
    s.close()
    return first - t0, (n - 1) / (end - first) if end > first else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    res = {"ndjson": [], "http": []}
    for _ in range(a.runs):
        res["ndjson"].append(ndjson(a.socket, a.prompt, a.max_tokens))
        res["http"].append(http(a.socket, a.prompt, a.max_tokens))
    out = {"runs": a.runs, "max_tokens": a.max_tokens}
    for k, v in res.items():
        out[k] = {"ttft_ms": round(statistics.median(x[0] for x in v) * 1000, 2),
                  "tokens_per_s": round(statistics.median(x[1] for x in v), 1)}
    out["ttft_ratio"] = round(out["http"]["ttft_ms"] / out["ndjson"]["ttft_ms"], 3)
    out["tokens_per_s_ratio"] = round(out["http"]["tokens_per_s"] / out["ndjson"]["tokens_per_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
