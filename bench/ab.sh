#!/bin/sh
# Two builds against each other on one model, in one run: lade-bench
# lookahead (plain greedy, then greedy lookahead, exactness checked) with
# build A and build B alternated for ROUNDS rounds, the order flipped every
# round so that a drift of the machine's speed falls on both. Prints, and
# writes to OUT/summary.json, each round's tokens/s and B/A ratios and
# their medians. For a change of kernels on a shared, noisy machine (CPU
# drivers): the ratio within a round is what to read, not the absolutes.
#
#   bench/ab.sh BUILD_A BUILD_B MODEL.gguf PROMPTS.jsonl OUT [ROUNDS] [LIMIT] [TOKENS]
#
# ROUNDS 5, LIMIT 2 prompts, TOKENS 48 by default; (N,W,G) = (4,4,4).
set -eu
a=$1
b=$2
model=$3
prompts=$4
out=$5
rounds=${6:-5}
limit=${7:-2}
tokens=${8:-48}
mkdir -p "$out"
run() { # build label round
    "$1/bench/lade-bench" lookahead --model "$model" --prompts "$prompts" --limit "$limit" \
        --max-tokens "$tokens" --nwg 4,4,4 --no-reference --json "$out/$2-$3.json" >/dev/null
}
i=1
while [ "$i" -le "$rounds" ]; do
    if [ $((i % 2)) = 1 ]; then
        run "$a" a "$i"
        run "$b" b "$i"
    else
        run "$b" b "$i"
        run "$a" a "$i"
    fi
    i=$((i + 1))
done
python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(label, i):
    d = json.load(open(f"{out}/{label}-{i}.json"))
    ag = d["aggregate"]
    return {"plain": ag["plain"]["tokens_per_s_overall"],
            "lookahead": ag["lookahead"]["tokens_per_s_overall"],
            "exact": all(p["lookahead"]["exact"] for p in d["prompts"]),
            "desc": d["desc"], "device": d["env"]["device"]}
rows = []
print("round  plain A  plain B  B/A    lookahead A  lookahead B  B/A")
for i in range(1, rounds + 1):
    x, y = load("a", i), load("b", i)
    r = {"round": i, "a": x, "b": y,
         "plain_ratio": y["plain"] / x["plain"],
         "lookahead_ratio": y["lookahead"] / x["lookahead"]}
    rows.append(r)
    print(f"{i:5d}  {x['plain']:7.2f}  {y['plain']:7.2f}  {r['plain_ratio']:.3f}  "
          f"{x['lookahead']:11.2f}  {y['lookahead']:11.2f}  {r['lookahead_ratio']:.3f}")
med = {k: statistics.median(r[k] for r in rows) for k in ("plain_ratio", "lookahead_ratio")}
exact = all(r["a"]["exact"] and r["b"]["exact"] for r in rows)
print(f"median B/A: plain {med['plain_ratio']:.3f}, lookahead {med['lookahead_ratio']:.3f}; "
      f"greedy lookahead exact in every run: {exact}")
json.dump({"model": rows[0]["a"]["desc"], "device": rows[0]["a"]["device"], "rounds": rows,
           "median": med, "exact": exact}, open(f"{out}/summary.json", "w"), indent=1)
EOF
