#!/usr/bin/env bash
# Training and inference throughput of the paper's network (unet_256 + 70x70 PatchGAN, 256x256) on a
# GPU over batch size, precision, channels-last and torch.compile, plus the start-up with and without
# the decoded-pair cache when a dataset is given. One prepared run that fits in about 10 minutes
# (a row that would start after 9 minutes is skipped, each row has its own time limit) and leaves
# one small file, $DIR/results.json (every row's figures and settings), beside a log per row.
#   bash benchmarks/gpu_matrix.sh /tmp/bench [DATA_DIR]        (prints one summary line per row)
# A reduced form runs on a CPU in a minute, to check the script itself:
#   DEVICE=cpu SMOKE=1 bash benchmarks/gpu_matrix.sh /tmp/bench-smoke [DATA_DIR]
set -uo pipefail
DIR=${1:-bench}; DATA=${2:-}; mkdir -p "$DIR"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-540}  # seconds after which no new row starts
START=$(date +%s)
if [ -n "${SMOKE:-}" ]; then  # tiny network, batches and steps: checks the plumbing, not the speed
    NET=(--netG unet_32 --ngf 8 --ndf 8 --patch 16 --crop-size 32 --load-size 32); BIG=4; STEPS=2
else
    NET=(--netG unet_256 --patch 70 --crop-size 256); BIG=64; STEPS=""
fi
run() {  # name, time limit (s), steps, warmup, extra flags...
    local name=$1 limit=$2 steps=${STEPS:-$3} warmup=$4; shift 4
    if [ $(( $(date +%s) - START )) -gt "$BUDGET" ]; then echo "$name: skipped (time budget spent)"; return; fi
    timeout "$limit" $PY -m pix2pix bench "${NET[@]}" --device "$DEVICE" --steps "$steps" --warmup "$warmup" \
        --json "$DIR/$name.json" "$@" > "$DIR/$name.log" 2>&1 || echo "$name: failed or timed out (see $name.log)"
    $PY - "$DIR/$name.json" "$name" <<'PYEOF' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
mfu = f"   MFU {100 * r['mfu']:.1f} %" if r.get("mfu") else ""
print(f"{sys.argv[2]:22s} train {r['train_images_per_second']:8.1f} img/s  {1000 * r['train_seconds_per_step']:7.1f} ms/step"
      f"   infer {r['infer_images_per_second']:8.1f} img/s   peak {r['peak_memory_bytes'] / 2**30:5.2f} GiB"
      f"   {r['achieved_tflops']:.1f} TFLOP/s{mfu}")
PYEOF
}
[ -n "$DATA" ] && run startup_b1_fp32 200 10 3 --batch-size 1 --data "$DATA" --direction BtoA
run b1_fp32             60 60 10 --batch-size 1 --precision fp32
run b1_bf16_cl          60 60 10 --batch-size 1 --precision bf16 --channels-last
run b16_bf16_cl         60 20  5 --batch-size 16 --precision bf16 --channels-last
run "b${BIG}_fp32"      60 10  3 --batch-size "$BIG" --precision fp32
run "b${BIG}_bf16"      60 10  3 --batch-size "$BIG" --precision bf16
run "b${BIG}_bf16_cl"   60 10  3 --batch-size "$BIG" --precision bf16 --channels-last
run "b$((2 * BIG))_bf16_cl" 60 10 3 --batch-size "$((2 * BIG))" --precision bf16 --channels-last
run "b${BIG}_bf16_cl_compile" 150 10 3 --batch-size "$BIG" --precision bf16 --channels-last --compile
run b1_bf16_cl_compile  150 60 10 --batch-size 1 --precision bf16 --channels-last --compile
$PY - "$DIR" <<'PYEOF'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
rows = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "results.json"}
(folder / "results.json").write_text(json.dumps(rows, indent=1))
print(f"{len(rows)} rows in {folder / 'results.json'}")
PYEOF
