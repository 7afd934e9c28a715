#!/usr/bin/env bash
# Training and inference throughput of the paper's network (unet_256 + 70x70 PatchGAN, 256x256) on a
# GPU over batch size, precision, channels-last and torch.compile; one JSON per setting in $DIR.
#   bash benchmarks/gpu_matrix.sh /tmp/bench        (prints one summary line per setting)
set -uo pipefail
DIR=${1:-bench}; mkdir -p "$DIR"
PY=${PYTHON:-python3}
run() {  # name, steps, warmup, extra flags...
    local name=$1 steps=$2 warmup=$3; shift 3
    timeout 240 $PY -m pix2pix bench --netG unet_256 --patch 70 --crop-size 256 --device cuda \
        --steps "$steps" --warmup "$warmup" --json "$DIR/$name.json" "$@" > "$DIR/$name.log" 2>&1 ||
        echo "$name: failed or timed out (see $name.log)"
    $PY - "$DIR/$name.json" "$name" <<'PYEOF' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:28s} train {r['train_images_per_second']:8.1f} img/s   infer {r['infer_images_per_second']:8.1f} img/s"
      f"   peak {r['peak_memory_bytes'] / 2**30:5.1f} GiB   {r.get('train_tflops', r.get('achieved_tflops', 0)) or 0:.1f} TFLOP/s")
PYEOF
}
run b1_fp32            60 10 --batch-size 1
run b1_bf16_cl         60 10 --batch-size 1 --precision bf16 --channels-last
run b16_bf16_cl        20  5 --batch-size 16 --precision bf16 --channels-last
run b64_fp32           10  3 --batch-size 64
run b64_bf16           10  3 --batch-size 64 --precision bf16
run b64_bf16_cl        10  3 --batch-size 64 --precision bf16 --channels-last
run b128_bf16_cl       10  3 --batch-size 128 --precision bf16 --channels-last
run b1_bf16_cl_compile 60 10 --batch-size 1 --precision bf16 --channels-last --compile
run b64_bf16_cl_compile 10 3 --batch-size 64 --precision bf16 --channels-last --compile
