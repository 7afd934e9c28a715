#!/usr/bin/env bash
# The Cityscapes protocol on one GPU in a fixed time budget per task: picks the batch size and the
# epoch count from the bench results of benchmarks/gpu_matrix.sh, then runs benchmarks/quality.py
# (segmenter, label2photo, photo2label, evaluation on the 500 val pairs, figures).
#   bash benchmarks/gpu_quality.sh DATA OUT MINUTES_PER_TASK BENCH_DIR
set -euo pipefail
DATA=$1 OUT=$2 MINUTES=$3 BENCH=$4
PY=${PYTHON:-python3}
read -r BS LR EPOCHS < <($PY - "$BENCH" "$MINUTES" "$DATA" <<'PYEOF'
import json, os, sys
bench, minutes, data = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ips = {b: json.load(open(f"{bench}/b{b}_bf16_cl.json"))["train_images_per_second"] for b in (16, 64)}
bs = 16 if ips[16] >= 0.7 * ips[64] else 64          # the smaller batch unless it costs > 30% speed
n = len(os.listdir(f"{data}/train"))
epochs = max(2, int(minutes * 60 * ips[bs] * 0.8 / n))  # 0.8: data gather, logging, samples
print(bs, 4e-4 if bs == 16 else 8e-4, epochs)
PYEOF
)
echo "batch $BS, lr $LR, $EPOCHS epochs per task ($((EPOCHS / 2)) + $((EPOCHS - EPOCHS / 2)) decay)"
$PY benchmarks/quality.py --data "$DATA" --out "$OUT" --tasks label2photo,photo2label \
    --netG unet_256 --size 256 --batch-size "$BS" --lr "$LR" --precision bf16 --channels-last \
    --epochs $((EPOCHS / 2)) --epochs-decay $((EPOCHS - EPOCHS / 2)) --device cuda \
    --segmenter-epochs 40 --segmenter-minutes 2 --segmenter-batch-size 16
# A small bundle to take home (no checkpoints or sample grids): scores, table, figures, run logs.
(cd "$OUT" && tar czf results-bundle.tgz results.json results.md figures ./*.json ./*/losses.jsonl ./*/config.json)
ls -la "$OUT/results-bundle.tgz"
