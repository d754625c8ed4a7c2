# The H100 speedup estimate of docs/lookahead.md ("Window size"): lavapipe tokens
# and rows a step (code/*.json, lade-bench --no-reference) put on the H100 kernelc-22m
# step curve, scaled to that GPU's own (7,5,5) run. An estimate, not a measurement.
import json, glob, os
# H100 kernelc-22m f16 whole-step GPU ms at 64 tokens of context (profile-kernelc-f16.json)
curve = {1: 0.306, 16: 0.5258, 64: 0.7965, 128: 1.0492}
def c(t):
    ks = sorted(curve)
    for a, b in zip(ks, ks[1:]):
        if t <= b:
            return curve[a] + (curve[b] - curve[a]) * (t - a) / (b - a)
    return curve[128]
# calibration: H100 run of (7,5,5) before text candidates: gpu 0.974 ms/step, wall 1.076; plain gpu 0.448, wall 0.470
plain_wall, la_gpu, la_wall, plain_gpu = 0.470, 0.974, 1.076, 0.448
rows755 = 45.0
k = (la_gpu - plain_gpu) / (c(rows755) - c(1))
host = (la_wall - la_gpu) - (plain_wall - plain_gpu)
print("k %.2f host %.3f" % (k, host))
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'code', '*.json'))):
    a = json.load(open(f))['aggregate']['lookahead']
    rows, tps = a['rows_per_step'], a['tokens_per_step']['mean']
    step = plain_wall + (c(rows) - c(1)) * k + host
    print("%-10s tok/step %.2f rows %5.1f est step %.3f ms est speedup %.2fx" % (os.path.basename(f)[:-5], tps, rows, step, tps * plain_wall / step))
