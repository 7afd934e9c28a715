#!/usr/bin/env bash
# The Cityscapes ablation on one GPU in a fixed time budget, leaving the results bundle:
# L1 + cGAN, L1 alone and cGAN alone for labels -> photo and photo -> labels (unet_256, 256x256),
# the segmenter at 256x256, every score in eval mode and with the paper's per-image sampling, and
# OUT/bundle/ (scores JSON, tables, figures, checksums, commands; no weights, under 16 MiB).
#
#   bash benchmarks/gpu_quality.sh DATA OUT MINUTES_PER_RUN [INCEPTION_WEIGHTS]
#
# MINUTES_PER_RUN: training budget of each L1 + cGAN / cGAN run (L1 alone has no discriminator
# and takes about half). The batch size is 16 (lr 4e-4, linear scaling from the paper's 1 at 2e-4
# would be too much; 4e-4 is what the H100 run used at batch 16) and the epoch count comes from a
# 20-step throughput probe. INCEPTION_WEIGHTS (weights-inception-2015-12-05-6726825d.pth) gives FID /
# KID; without it (and with no network) they are left out with a note, and the rest is scored.
# Copy back OUT/bundle/ (e.g. tar czf bundle.tgz -C OUT bundle) and commit it under docs/results/.
set -euo pipefail
DATA=$1 OUT=$2 MINUTES=$3 WEIGHTS=${4:-}
PY=${PYTHON:-python3}
BS=${BS:-16} LR=${LR:-4e-4}
mkdir -p "$OUT"
$PY -m pix2pix bench --netG unet_256 --patch 70 --crop-size 256 --device cuda --batch-size "$BS" \
    --precision bf16 --channels-last --steps 20 --warmup 5 --json "$OUT/probe.json" > "$OUT/probe.log" 2>&1
EPOCHS=$($PY - "$OUT/probe.json" "$MINUTES" "$DATA" <<'PYEOF'
import json, os, sys
ips = json.load(open(sys.argv[1]))["train_images_per_second"]
n = len(os.listdir(os.path.join(sys.argv[3], "train")))
print(max(2, int(float(sys.argv[2]) * 60 * ips * 0.8 / n)))  # 0.8: data gather, logging, evaluation
PYEOF
)
echo "batch $BS, lr $LR, $EPOCHS epochs per run ($((EPOCHS / 2)) + $((EPOCHS - EPOCHS / 2)) decay)"
$PY benchmarks/quality.py --data "$DATA" --out "$OUT" \
    --netG unet_256 --size 256 --batch-size "$BS" --lr "$LR" --precision bf16 --channels-last \
    --epochs $((EPOCHS / 2)) --epochs-decay $((EPOCHS - EPOCHS / 2)) --device cuda \
    --segmenter-size 256 --segmenter-epochs 40 --segmenter-minutes 3 --segmenter-batch-size 16 \
    ${WEIGHTS:+--inception-weights "$WEIGHTS"}
du -sh "$OUT/bundle"
