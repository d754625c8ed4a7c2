#!/usr/bin/env python3
"""Regenerate docs/benchmarks.md from the JSON that lade-bench wrote.

    bench/mkdoc.py [--results DIR] [--out FILE] [--reference README]

Every folder under bench/results/ (one per device, named by the device slug
that `lade-bench device` prints) becomes one section. Only measured figures
are printed; what is missing is said to be missing. The reference
algorithm's tokens-per-pass table is read from ../shared/prompts/README.md
when it is there.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INTRO = """\
# Benchmarks

Measured by `lade-bench` (`bench/bench_decode.c`) and regenerated from the
JSON under `bench/results/<device>/` by `bench/mkdoc.py`: edit those, not this
page. `bench/run.sh` runs the whole set on the machine at hand and rewrites
this page; `bench/gpu.sh` is the same set as one bounded run on a GPU machine
(copy its `OUT_DIR/<device>` folder into `bench/results/` and run
`bench/mkdoc.py`).

```sh
cmake -S . -B build-bench && cmake --build build-bench -j2 --target lade-bench
bench/run.sh                      # this machine; --full: all 40 code prompts on a CPU device too
bench/gpu.sh BUILD_DIR ../shared/models OUT_DIR   # GPU machine, bounded (timeouts add up to 350 s)
build-bench/bench/lade-bench lookahead --model M.gguf --prompts P.jsonl --nwg 5,15,15 --temp 0.8
```

How to read the figures:
- Every speedup compares runs of the same build on the same device in the same
  process, prompt by prompt: plain greedy (one token per step), lookahead as
  lade runs it (bonus token, pool seeded from prompt and output), and
  lookahead in *reference mode* (neither: the published algorithm). The
  sampled rows do the same at temperature 0.8 with one seed.
- *tokens/step* counts the tokens after the first over the forward passes after
  the prefill; *tokens/pass* counts every token over every pass, prefill
  included, which is the figure of the reference table in
  `../shared/prompts/README.md`. *rows/step* (in the JSON, `rows_per_step`)
  is the mean rows a lookahead step sends through the model: on a GPU a
  step's cost grows with them, so it says what the tokens cost.
- *tokens/s* is decoded tokens over the wall-clock time after the prefill.
  GPU ms/step comes from timestamp queries around a step's command buffer;
  host ms/step is the rest of the wall-clock step. Weight GB/s is the bytes of
  weights one plain step reads over the GPU time of a step.
- *exact* counts prompts whose lookahead output equals the plain output token
  for token (greedy), or for the same seed (sampled). A mismatch is listed
  with its prompt and configuration, never dropped.
- Lookahead runs with the adaptive fallback off, so that the figures are those
  of lookahead itself (one run, marked, has it on, as laded runs); (N,W,G) is sized to the device by
  `dec_lookahead_choose` unless the table says otherwise.
"""


def fmt(x, nd=2):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def load(path):
    with open(path) as f:
        return json.load(f)


def reference_table(readme):
    """prompt id -> (reference tokens/pass, with bonus and seeding)."""
    ref = {}
    if not readme or not os.path.exists(readme):
        return ref
    for line in open(readme):
        m = re.match(r"\|\s*((?:code|story)-\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
        if m:
            ref[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return ref


def env_line(env):
    return (f"Device **{env['device']}** ({env['device_type']}, driver {env.get('driver') or '-'}); "
            f"host {env['cpu']}, {env['cpus']} CPUs, load average {fmt(env.get('loadavg_1m'))} at start; "
            f"{env['date']}.")


def greedy_section(out, doc, name):
    out.append(f"### Greedy decoding: {name}\n")
    each = f"{doc['max_tokens']} tokens each" if doc.get("max_tokens") else "each prompt's max_tokens"
    out.append(f"Prompts: `{os.path.basename(doc['prompts_file'])}`, {each}.\n")
    out.append("| model | prompts | prompt tokens | prefill tokens/s | tokens | tokens/s | ms/token "
               "| GPU ms/step | host ms/step | weight MB/step | weight GB/s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in doc["models"]:
        base = os.path.basename(m["model"])
        if "error" in m:
            out.append(f"| {base} | not loaded: {m['error'].split(': ', 1)[-1]} " + "| - " * 9 + "|")
            continue
        a = m["aggregate"]
        out.append(f"| {base} | {len(m['prompts'])} | {a['prompt_tokens']} | {fmt(a['prefill_tokens_per_s'], 1)} "
                   f"| {a['tokens']} | {fmt(a['tokens_per_s'])} | {fmt(a['ms_per_token'])} "
                   f"| {fmt(a['gpu_ms_per_step'], 3)} | {fmt(a['host_ms_per_step'], 3)} "
                   f"| {m['weight_bytes'] / 1e6:.1f} | {fmt(a['weight_gb_per_s'])} |")
    out.append("")


def mm(agg, key, nd=2):
    v = agg.get(key)
    return f"{fmt(v['mean'], nd)} / {fmt(v['median'], nd)}" if v else "-"


def lookahead_aggregate(out, doc):
    agg = doc["aggregate"]
    out.append("| configuration | prompts | tokens/s overall | speedup mean / median | tokens/step mean / median "
               "| tokens/pass mean / median | hit rate mean | exact |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name in ("plain", "lookahead", "reference", "plain_sampled", "lookahead_sampled", "reference_sampled"):
        a = agg.get(name)
        if not a:
            continue
        la = "speedup" in a
        label = name.replace("lookahead", "lade lookahead").replace("reference", "reference mode").replace("_", ", ")
        out.append(f"| {label} | {a['prompts']} | {fmt(a['tokens_per_s_overall'])} "
                   f"| {mm(a, 'speedup') if la else '1 (baseline)'} | {mm(a, 'tokens_per_step') if la else '1'} "
                   f"| {mm(a, 'tokens_per_pass') if la else '-'} "
                   f"| {fmt(a['hit_rate']['mean']) if la else '-'} "
                   f"| {str(a['exact']) + '/' + str(a['compared']) if la else '-'} |")
    out.append("")
    for key, label in (("greedy_pass_ratio", "greedy"), ("sampled_pass_ratio", "sampled")):
        if key in agg:
            out.append(f"Ratio of mean tokens/pass, lade over reference mode, {label}: **{fmt(agg[key], 3)}**.")
    out.append("")


def lookahead_prompts(out, doc):
    sampled = any("plain_sampled" in p for p in doc["prompts"])
    head = "| prompt | plain tokens/s | lade tokens/pass | lade speedup | ref. tokens/pass | ref. speedup | exact"
    out.append(head + (" | sampled: lade tokens/pass | lade speedup | ref. tokens/pass | ref. speedup | exact |"
                       if sampled else " |"))
    out.append("|---" * (12 if sampled else 7) + "|")

    def cells(p, plain, la, ref):
        if plain not in p or "error" in p[plain]:
            return ["error"] * 5
        x, r = p[la], p[ref]
        ex = "yes" if x.get("exact") and r.get("exact") else \
            f"NO ({la}@{x.get('first_mismatch', '-')}, {ref}@{r.get('first_mismatch', '-')})"
        return [fmt(x.get("tokens_per_pass")), fmt(x.get("speedup")) + "x",
                fmt(r.get("tokens_per_pass")), fmt(r.get("speedup")) + "x", ex]

    for p in doc["prompts"]:
        if "error" in p:
            out.append(f"| {p['id']} | error: {p['error']} |")
            continue
        row = [p["id"], fmt(p["plain"].get("tokens_per_s"), 1)] + cells(p, "plain", "lookahead", "reference")
        if sampled:
            row += cells(p, "plain_sampled", "lookahead_sampled", "reference_sampled")
        out.append("| " + " | ".join(row) + " |")
    out.append("")


def compare_reference(out, doc, ref):
    """The README's reference table is at (5,15,15), 128 tokens, greedy."""
    ids = [p["id"] for p in doc["prompts"] if p["id"] in ref and "lookahead" in p and "error" not in p["lookahead"]]
    if not ids:
        return
    nwg = doc["nwg"]
    same = (nwg["n"], nwg["w"], nwg["g"]) == (5, 15, 15) and doc["prompts"][0].get("max_tokens") == 128
    ours = [p for p in doc["prompts"] if p["id"] in ids]
    m_ref = statistics.mean(p["reference"]["tokens_per_pass"] for p in ours)
    m_la = statistics.mean(p["lookahead"]["tokens_per_pass"] for p in ours)
    t_ref = statistics.mean(ref[i][0] for i in ids)
    t_la = statistics.mean(ref[i][1] for i in ids)
    out.append(f"Against the reference table of `../shared/prompts/README.md` over the same {len(ids)} prompts "
               f"(greedy tokens/pass means): reference mode {m_ref:.2f} measured vs {t_ref:.2f} in the table; "
               f"lade {m_la:.2f} measured vs {t_la:.2f} in the table; ratio {m_la / m_ref:.3f} measured vs "
               f"{t_la / t_ref:.3f} in the table."
               + ("" if same else f" The table is at (5,15,15) and 128 tokens; this run is at "
                  f"({nwg['n']},{nwg['w']},{nwg['g']}), so the figures are not like for like."))
    out.append("")


def lookahead_section(out, doc, ref):
    name = os.path.basename(doc["model"])
    if "error" in doc:
        out.append(f"### Lookahead: {name}\n\nNot run: the model failed to load: {doc['error']}\n")
        return
    nwg = doc["nwg"]
    src = "from --nwg" if nwg["source"] == "--nwg" else \
        f"sized to the device (one more row costs {fmt(nwg['row_cost'], 4)} of a one-row step)"
    n = len(doc["prompts"])
    mt = doc["prompts"][0].get("max_tokens") if n else None
    ad = ", adaptive on" if doc["params"]["adaptive"] else ""
    out.append(f"### Lookahead: {name}, (N,W,G)=({nwg['n']},{nwg['w']},{nwg['g']}){ad}\n")
    out.append(f"(N,W,G) {src}; {n}{of_total(doc['prompts_file'], n)} prompts of `{os.path.basename(doc['prompts_file'])}`, up to {mt} tokens each; "
               f"temperature {fmt(doc['params']['temperature'], 1)} with seed {doc['params']['seed']} for the "
               f"sampled rows; adaptive fallback {'**on**' if doc['params']['adaptive'] else 'off'}. "
               + env_line(doc["env"]) + "\n")
    lookahead_aggregate(out, doc)
    compare_reference(out, doc, ref)
    if doc.get("mismatches"):
        out.append("**Exactness mismatches:** " + "; ".join(
            f"{m['id']} {m['config']} (first differs at token {m['first_mismatch']})" for m in doc["mismatches"])
            + ".\n")
    out.append("<details><summary>Per prompt</summary>\n")
    lookahead_prompts(out, doc)
    out.append("</details>\n")


def of_total(path, n):
    """" of 40" when the run took fewer prompts than the file holds."""
    try:
        total = sum(1 for line in open(path) if line.strip())
    except OSError:
        return ""
    return f" of {total}" if total > n else ""


def summary(out, docs):
    rows = [d for _, d in docs if d.get("bench") == "lookahead" and "error" not in d]
    if not rows:
        return
    out.append("Lookahead at a glance (greedy; means over prompts; every figure below in its own section):\n")
    out.append("| model | (N,W,G) | adaptive | prompts | lade tokens/pass | reference-mode tokens/pass | ratio "
               "| lade speedup | reference-mode speedup | exact (greedy + sampled) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for d in rows:
        a, nwg = d["aggregate"], d["nwg"]
        la, ref = a["lookahead"], a["reference"]
        ex = sum(a[c]["exact"] for c in a if isinstance(a[c], dict) and "exact" in a[c])
        cmp_ = sum(a[c]["compared"] for c in a if isinstance(a[c], dict) and "compared" in a[c])
        out.append(f"| {os.path.basename(d['model'])} | ({nwg['n']},{nwg['w']},{nwg['g']}) "
                   f"| {'on' if d['params']['adaptive'] else 'off'} | {la['prompts']} "
                   f"| {fmt(la['tokens_per_pass']['mean'])} | {fmt(ref['tokens_per_pass']['mean'])} "
                   f"| {fmt(a.get('greedy_pass_ratio'), 3)} | {fmt(la['speedup']['mean'])}x "
                   f"| {fmt(ref['speedup']['mean'])}x | {ex}/{cmp_} |")
    out.append("")


# The speed targets of issue #6 (the GPU issue), for the 7B-shape table (H100 figures;
# the fraction of the device's bandwidth is what carries across devices).
STEP_TARGETS = {64: 1.3, 128: 1.6}


def steps_section(out, folder):
    """lade-steps JSON (steps-*.json): Llama-2-7B-shaped models with random
    weights from lade-synth: greedy speed, weight bandwidth, prefill, and the
    step cost curve that lookahead lives on."""
    files = sorted(glob.glob(os.path.join(folder, "steps-*.json")))
    docs = [(f, load(f)) for f in files]
    docs = [(f, d) for f, d in docs if isinstance(d, dict) and "steps" in d]
    if not docs:
        return
    out.append("### Llama-2-7B shape (lade-synth random weights, lade-steps)\n")
    out.append("4096 dim, 32 layers, 32 heads, 11008 FFN, 32000 vocab; weights are random, so only speed means "
               "anything. Weight GB/s is the bytes one plain step reads over its GPU time (timestamps).\n")
    rb = [d.get("read_gb_per_s") for _, d in docs if d.get("read_gb_per_s")]
    if rb:
        out.append(f"A plain read kernel (`shaders/readbw.comp`, 1 GiB) reaches **{fmt(max(rb), 0)} GB/s** on this "
                   "device: the practical limit the fractions below are taken against (targets: F16 85%, "
                   "Q4_0 and Q4_K 60%).\n")
    out.append("| format | weights GB | greedy tokens/s | GPU ms/token | weight GB/s | of read limit | "
               "prefill tokens/s (512) |")
    out.append("|---|---|---|---|---|---|---|")
    for f, d in docs:
        name = os.path.basename(f)[len("steps-"):-5]
        frac = d.get("fraction_of_read_bw")
        out.append(f"| {name} | {fmt(d['weight_gb'])} | {fmt(d['greedy_tokens_per_s'], 1)} | "
                   f"{fmt(d['greedy_gpu_ms'], 3)} | {fmt(d['weight_read_gb_per_s'], 0)} | "
                   f"{fmt(100 * frac, 1) + '%' if frac else '-'} | {fmt(d['prefill_tokens_per_s'], 0)} |")
    out.append("")
    host = [(f, d) for f, d in docs if "host_record_ms" in d]
    if host:
        out.append("Host time of a greedy token (lade-steps): recording the step's command buffer, submit until "
                   "the fence signals (less the GPU time: submit and wake-up latency), reading results, and the "
                   "rest of the loop:\n")
        out.append("| format | wall ms/token | GPU ms | recording ms | submit to fence beyond GPU ms | "
                   "results ms | outside the step ms |")
        out.append("|---|---|---|---|---|---|---|")
        for f, d in host:
            name = os.path.basename(f)[len("steps-"):-5]
            out.append(f"| {name} | {fmt(d['greedy_ms_per_token'], 3)} | {fmt(d['greedy_gpu_ms'], 3)} | "
                       f"{fmt(d['host_record_ms'], 3)} | "
                       f"{fmt(d['host_submit_to_fence_ms'] - d['greedy_gpu_ms'], 3)} | "
                       f"{fmt(d['host_results_ms'], 3)} | {fmt(d['host_outside_step_ms'], 3)} |")
        out.append("")
    ts = [s["T"] for s in docs[0][1]["steps"]]
    out.append("Step GPU time against rows per step, as a multiple of a one-row step "
               f"(targets: T=64 at most {STEP_TARGETS[64]}x, T=128 at most {STEP_TARGETS[128]}x):\n")
    out.append("| format | " + " | ".join(f"T={t}" for t in ts) + " |")
    out.append("|---|" + "---|" * len(ts))
    for f, d in docs:
        name = os.path.basename(f)[len("steps-"):-5]
        base = d["steps"][0]["gpu_ms"]
        cells = [f"{fmt(s['gpu_ms'], 2)} ms ({fmt(s['gpu_ms'] / base, 2)}x)" if base else "?" for s in d["steps"]]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")


def profile_section(out, folder):
    """lade-steps --profile JSON (profile-*.json): GPU ms of a step by phase,
    from a timestamp after every barrier."""
    files = sorted(glob.glob(os.path.join(folder, "profile-*.json")))
    docs = [(f, load(f)) for f in files]
    docs = [(f, d) for f, d in docs if isinstance(d, dict) and d.get("rows")]
    if not docs:
        return
    out.append("### Where a step's GPU time goes (lade-steps --profile)\n")
    out.append("GPU milliseconds by phase, summed over layers (`docs/kernels.md` names the phases); past = "
               "tokens already in the cache, T = rows in the step. Timestamps after every barrier add a "
               "little to the totals.\n")
    for f, d in docs:
        name = os.path.basename(f)[len("profile-"):-5]
        rows = d["rows"]
        phases = [k for k in rows[0] if k not in ("past", "T", "total_ms")]
        out.append(f"**{name}** (geometry: decode {d.get('mm', 'default')}, wide {d.get('mm_wide', 'default')})\n")
        out.append("| past | T | " + " | ".join(phases) + " | total |")
        out.append("|---|---|" + "---|" * (len(phases) + 1))
        for r in rows:
            out.append(f"| {r['past']} | {r['T']} | " + " | ".join(fmt(r[p], 3) for p in phases) +
                       f" | {fmt(r['total_ms'], 3)} |")
        out.append("")


def parallel_section(out, folder):
    """bench/parallel.py JSON (parallel-*.json): many clients in shared steps
    against the same requests one at a time, and a chat with and without
    the prefix cache."""
    files = sorted(glob.glob(os.path.join(folder, "parallel-*.json")))
    docs = [(f, load(f)) for f in files]
    docs = [(f, d) for f, d in docs if isinstance(d, dict) and d.get("clients")]
    if not docs:
        return
    out.append("### Many clients at once (bench/parallel.py)\n")
    out.append("k clients each send one request (k prompts of the set, greedy, the daemon's lookahead, "
               "the prefix cache off so that each phase prefills every prompt); "
               "the same requests are served one at a time and then all together on the same laded in the "
               "same run. Ratio: aggregate tokens/s together over one at a time (target on lavapipe: at "
               "least 1.7 for 4 clients). TTFT and inter-token latency are of the concurrent phase; "
               "tokens/step is per sequence. Same text: every request's text together equals its text "
               "alone.\n")
    for f, d in docs:
        out.append(f"**{d['model']}**, {d['max_tokens']} tokens a request, prompts `{d['prompts']}`\n")
        out.append("| clients | together tokens/s | one at a time tokens/s | ratio | TTFT p50 / p95 ms | "
                   "ITL p50 / p95 ms | tokens/step/sequence | same text |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in d["clients"]:
            t, o = r["together"], r["one_at_a_time"]
            out.append(f"| {r['clients']} | {fmt(t['tokens_per_s'], 1)} | {fmt(o['tokens_per_s'], 1)} | "
                       f"**{fmt(r['ratio'])}** | {fmt(t['ttft_ms_p50'], 0)} / {fmt(t['ttft_ms_p95'], 0)} | "
                       f"{fmt(t['itl_ms_p50'], 1)} / {fmt(t['itl_ms_p95'], 1)} | "
                       f"{fmt(t['tokens_per_step_per_sequence'])} | {'yes' if r['same_text'] else 'NO'} |")
        out.append("")
        ch = d.get("chat")
        if ch:
            out.append(f"A {ch['turns']}-turn conversation ({ch['max_tokens']} tokens an answer; each prompt is "
                       "the last one, its answer and a new line), with the prefix cache and without "
                       "(`cache_prompt: false`):\n")
            out.append("| turn | prompt tokens | prefilled (cache) | TTFT ms (cache) | prefilled (none) | "
                       "TTFT ms (none) |")
            out.append("|---|---|---|---|---|---|")
            for c, n in zip(ch["cached"], ch["cold"]):
                out.append(f"| {c['turn']} | {c['prompt_tokens']} | {c['prefilled_tokens']} | "
                           f"{fmt(c['ttft_ms'], 1)} | {n['prefilled_tokens']} | {fmt(n['ttft_ms'], 1)} |")
            out.append("")


def device_section(out, folder, ref):
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    # Other tools' JSON may share the folder: keep lade-bench's only.
    docs = [(f, d) for f, d in ((f, load(f)) for f in files) if isinstance(d, dict) and "bench" in d]
    envs = [d["env"] for _, d in docs if d.get("env")]
    if not envs:
        return None
    env = envs[0]
    out.append(f"## {env['device']} ({env['device_type']})\n")
    out.append(env_line(env) + f" Results: `bench/results/{os.path.basename(folder)}/`.\n")
    if os.path.exists(os.path.join(folder, "README.md")):
        out.append(f"Which run and which build each file comes from, and what changed since: "
                   f"`bench/results/{os.path.basename(folder)}/README.md`.\n")
    if env["device_type"] == "CPU":
        out.append("This device is a CPU running the Vulkan shaders (lavapipe): every row of a step costs "
                   "compute, so lookahead's extra rows are not free and wall-clock speedups below 1 are "
                   "expected; tokens/step and exactness are what carry over to a GPU. The CPUs are shared "
                   "with other work, so tokens/s are noisy.\n")
    summary(out, docs)
    for f, d in docs:
        if d.get("bench") == "greedy":
            greedy_section(out, d, os.path.basename(f)[:-5])
    for f, d in docs:
        if d.get("bench") == "lookahead":
            lookahead_section(out, d, ref)
    steps_section(out, folder)
    profile_section(out, folder)
    parallel_section(out, folder)
    return env["device_type"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=os.path.join(SRC, "bench", "results"))
    ap.add_argument("--out", default=os.path.join(SRC, "docs", "benchmarks.md"))
    ap.add_argument("--reference", default=os.path.join(SRC, "..", "shared", "prompts", "README.md"))
    a = ap.parse_args()
    ref = reference_table(a.reference)
    out = [INTRO]
    gpu = False
    folders = sorted(d for d in glob.glob(os.path.join(a.results, "*")) if os.path.isdir(d))
    for d in folders:
        kind = device_section(out, d, ref)
        gpu |= kind is not None and kind != "CPU"
    if not gpu:
        out.append("## Not measured yet\n")
        out.append("No GPU figures yet: `bench/gpu.sh` has not been run on a GPU (an NVIDIA H100/H200 is "
                   "planned). Nothing on this page says how lade performs on a GPU.\n")
    with open(a.out, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    print(f"mkdoc: wrote {a.out} from {len(folders)} device folder(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
