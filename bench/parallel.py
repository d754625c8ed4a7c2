#!/usr/bin/env python3
"""Many clients at once (issue #21), on one laded this script starts:

1. For 1, 2, 4 and 8 clients: the same requests (k prompts of a prompt set,
   the prefix cache off) served one at a time, then all k sent together,
   in the same run:
   aggregate tokens/s of both and their ratio, time to first token p50/p95
   and inter-token latency p50/p95 of the concurrent phase, and lookahead
   tokens per step per sequence.
2. A 10-turn conversation (each turn's prompt is the last one, its answer
   and a new line), once with the prefix cache (cache_prompt true) and once
   without, turn by turn: prompt tokens, tokens reused, tokens prefilled,
   time to first token.

Prints a summary and writes JSON (bench/results/<device>/parallel-<model>.json
unless --out). Standard library only. Not run in CI.

    bench/parallel.py BUILD_DIR MODEL.gguf [--prompts P.jsonl] [--max-tokens N]
                      [--clients 1,2,4,8] [--turns 10] [--ctx N] [--device D] [--out FILE]
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TURNS = [" Then the cat came.", " She said hello.", " They went to the park.",
         " It started to rain.", " He found a box.", " The box was red.",
         " They laughed.", " Mom called them home.", " They ate soup.",
         " The end came soon.", " Night fell.", " They slept."]


def pct(v, q):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        hello = json.loads(self.f.readline())
        assert hello["event"] == "hello", hello

    def call(self, req):
        """Sends req, reads to its end: (done, text, t_send, [(t, n_tokens)])."""
        t0 = time.monotonic()
        self.s.sendall((json.dumps(req) + "\n").encode())
        marks, text = [], []
        for line in self.f:
            ev = json.loads(line)
            if ev["event"] == "token":
                marks.append((time.monotonic(), len(ev.get("tokens", [])) or 1))
                text.append(ev["text"])
            elif ev["event"] in ("done", "result"):
                return ev, "".join(text), t0, marks
            elif ev["event"] == "error":
                raise RuntimeError(ev)
        raise RuntimeError("connection closed")

    def close(self):
        self.s.close()


def start_laded(build, model, ctx, parallel, tmp, device=None):
    conf = os.path.join(tmp, "laded.conf")
    open(conf, "w").close()
    sock = os.path.join(tmp, "laded.sock")
    log = open(os.path.join(tmp, "laded.log"), "w")
    p = subprocess.Popen([os.path.join(build, "daemon", "laded"), "--model=" + model, "-c", conf,
                          "--socket", sock, "--set", "daemon.socket_group=",
                          "--set", "daemon.max_parallel=%d" % parallel,
                          "--set", "model.context_length=%d" % ctx,
                          "--set", "daemon.queue_length=64",
                          "--set", "daemon.log_level=notice"] +
                         (["--set", "device.device=" + device] if device else []),
                         stderr=log, stdout=log)
    for _ in range(12000):
        if os.path.exists(sock):
            try:
                Client(sock).close()
                return p, sock
            except OSError:
                pass
        if p.poll() is not None:
            break
        time.sleep(0.01)
    log.close()
    sys.exit("laded did not start:\n" + open(os.path.join(tmp, "laded.log")).read())


def slug(device):
    d = re.sub(r"\s*\((cpu|discrete|integrated|virtual|other)[^)]*\)$", "", device, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", d.lower()).strip("-")


def run_one(sock, req):
    c = Client(sock)
    try:
        return c.call(req)
    finally:
        c.close()


def phase(sock, reqs, together):
    """Runs reqs one at a time or all at once; per request (done, t0, marks)."""
    out = [None] * len(reqs)
    t_start = time.monotonic()
    if not together:
        for i, r in enumerate(reqs):
            out[i] = run_one(sock, r)
    else:
        def work(i):
            out[i] = run_one(sock, reqs[i])
        th = [threading.Thread(target=work, args=(i,)) for i in range(len(reqs))]
        for t in th:
            t.start()
        for t in th:
            t.join()
    wall = time.monotonic() - t_start
    gen = sum(o[0]["stats"]["generated_tokens"] for o in out)
    ttft = [o[3][0][0] - o[2] for o in out if o[3]]
    itl = []
    for o in out:
        m = o[3]
        for a, b in zip(m, m[1:]):
            itl.extend([(b[0] - a[0]) / b[1]] * b[1])
    tps_seq = [o[0]["stats"]["tokens_per_step"] for o in out]
    return {"wall_s": wall, "generated_tokens": gen, "tokens_per_s": gen / wall if wall else 0,
            "ttft_ms_p50": 1e3 * pct(ttft, 0.5), "ttft_ms_p95": 1e3 * pct(ttft, 0.95),
            "itl_ms_p50": 1e3 * pct(itl, 0.5), "itl_ms_p95": 1e3 * pct(itl, 0.95),
            "tokens_per_step_per_sequence": statistics.mean(tps_seq) if tps_seq else 0,
            "texts": [o[1] for o in out]}


def chat(sock, first, turns, max_tokens, cache):
    rows, prompt = [], first
    c = Client(sock)
    for t in range(turns):
        done, text, t0, marks = c.call({"id": "c%d" % t, "op": "generate", "prompt": prompt,
                                        "max_tokens": max_tokens, "cache_prompt": cache})
        st = done["stats"]
        rows.append({"turn": t + 1, "prompt_tokens": st["prompt_tokens"],
                     "reused_tokens": st.get("prompt_tokens_reused", 0),
                     "prefilled_tokens": st["prompt_tokens"] - st.get("prompt_tokens_reused", 0),
                     "prefill_ms": st["prefill_ms"],
                     "ttft_ms": 1e3 * (marks[0][0] - t0) if marks else 0})
        prompt = prompt + text + TURNS[t % len(TURNS)]
    c.close()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("model")
    ap.add_argument("--prompts", default=os.path.join(SRC, "..", "shared", "prompts",
                                                      "stories.jsonl"))
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--turn-tokens", type=int, default=24)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--device", help="[device] device: an index or a name substring")
    ap.add_argument("--out")
    a = ap.parse_args()
    ks = [int(x) for x in a.clients.split(",")]
    prompts = []
    if os.path.exists(a.prompts):
        for line in open(a.prompts):
            if line.strip():
                prompts.append(json.loads(line)["prompt"])
    else:
        prompts = ["Once upon a time", "Tom and Sue", "Lily wanted to", "One day, a little dog",
                   "The sun was", "Ben had a red ball", "A big bird", "The old man"]
    with tempfile.TemporaryDirectory(prefix="lade-parallel-") as tmp:
        p, sock = start_laded(a.build, os.path.abspath(a.model), a.ctx, max(ks), tmp, a.device)
        try:
            info = run_one(sock, {"id": "i", "op": "info"})[0]
            device = info.get("device", "unknown")
            res = {"model": os.path.basename(a.model), "device": device,
                   "max_tokens": a.max_tokens, "prompts": os.path.basename(a.prompts),
                   "lookahead": info.get("lookahead"), "clients": []}
            # warm-up: the first steps of a shape record command buffers
            run_one(sock, {"id": "w", "op": "generate", "prompt": prompts[0], "max_tokens": 8})
            for k in ks:
                # cache_prompt false: each phase prefills every prompt, so
                # the comparison is of shared steps alone (the second phase
                # would otherwise find the first's prompts in the cache)
                reqs = [{"id": "r%d" % i, "op": "generate", "prompt": prompts[i % len(prompts)],
                         "max_tokens": a.max_tokens, "cache_prompt": False} for i in range(k)]
                one = phase(sock, reqs, False)
                tog = phase(sock, reqs, True)
                same = one.pop("texts") == tog.pop("texts")
                row = {"clients": k, "one_at_a_time": one, "together": tog,
                       "ratio": tog["tokens_per_s"] / one["tokens_per_s"]
                       if one["tokens_per_s"] else 0, "same_text": same}
                res["clients"].append(row)
                print("%d clients: together %.1f tok/s, one at a time %.1f tok/s, ratio %.2f; "
                      "TTFT p50 %.0f p95 %.0f ms; ITL p50 %.1f p95 %.1f ms; %.2f tokens/step/seq;"
                      " same text: %s" % (k, tog["tokens_per_s"], one["tokens_per_s"],
                                          row["ratio"], tog["ttft_ms_p50"], tog["ttft_ms_p95"],
                                          tog["itl_ms_p50"], tog["itl_ms_p95"],
                                          tog["tokens_per_step_per_sequence"], same), flush=True)
            cached = chat(sock, prompts[0], a.turns, a.turn_tokens, True)
            cold = chat(sock, prompts[0], a.turns, a.turn_tokens, False)
            res["chat"] = {"turns": a.turns, "max_tokens": a.turn_tokens, "cached": cached,
                           "cold": cold}
            for c, d in zip(cached, cold):
                print("turn %2d: %4d prompt tokens; cached: %4d prefilled, TTFT %6.1f ms; "
                      "cold: %4d prefilled, TTFT %6.1f ms" % (
                          c["turn"], c["prompt_tokens"], c["prefilled_tokens"], c["ttft_ms"],
                          d["prefilled_tokens"], d["ttft_ms"]), flush=True)
            stats = run_one(sock, {"id": "s", "op": "stats"})[0]
            res["daemon_stats"] = stats.get("stats", {}).get("batch")
        finally:
            p.terminate()
            p.wait()
    out = a.out or os.path.join(SRC, "bench", "results", slug(device),
                                "parallel-%s.json" % os.path.splitext(
                                    os.path.basename(a.model))[0])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
