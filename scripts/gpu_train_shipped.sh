#!/usr/bin/env bash
# How the shipped checkpoint was trained: on a lent H100, from a FLAC subset of the default dataset
# packed here with `python scripts/remote_subset.py pack data/default --out .gpu/subset --max-mb 50`
# (3,382 notes: 3,112 train / 270 valid, 380 instruments, every pitch 44-70).
#
#   bash scripts/gpu_train_shipped.sh TOTAL_MINUTES THIS_CALL_MINUTES [RUN_DIR]
#
# The first call measures the step rate of every scale (benchmarks/bench_train.py), fits the
# progressive schedule (paper architecture, larger batches) into TOTAL_MINUTES of training and
# trains for THIS_CALL_MINUTES; a later call on the same machine resumes. Each call exports the
# EMA generator in float16 to $OUT/shipped.
# RECIPE=control (environment) trains with the word-control recipe of issue 15 (preset
# small-control's four settings on the paper model; docs/training.md, "From scratch").
set -euo pipefail
TOTAL=${1:-15}
THIS=${2:-7}
RUN=${3:-/tmp/darkgan-run}
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ -z "${SKIP_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export DARKGAN_MODELS_DIR=$PWD/.gpu/subset/models
DATA=/tmp/darkgan-subset
if [ ! -f $DATA/vocabulary.json ]; then
  python3 scripts/remote_subset.py unpack .gpu/subset --out $DATA
  python3 -m darkgan data prepare $DATA
  python3 -m darkgan label $DATA --device cuda --batch-size 256
  python3 -m darkgan attributes $DATA --n 128 --quantile 0.9 | tail -n 30
fi
BATCH='[64,64,48,32,32,32]'
RECIPE_SET=()
if [ "${RECIPE:-paper}" = control ]; then
  RECIPE_SET=(--set model.attr_input=std_logit --set train.attr_loss=std_mse
              --set train.loss_weights.g_teacher=1 --set train.output_terms_from_scale=2
              --set train.loss_weights.g_f0=0.5)
fi
if [ ! -f $RUN/LATEST ]; then
  python3 benchmarks/bench_train.py --preset paper --device cuda --seconds 3 \
    --set "train.batch_size=$BATCH" | tee $OUT/bench_train_paper_gpu.txt
  SCHED=$(python3 - "$TOTAL" <<'PY'
import json, sys
total_s = float(sys.argv[1]) * 60
rows = json.loads(open(__import__("os").environ.get("OUT", "/tmp/out") + "/bench_train_paper_gpu.txt").read().strip().splitlines()[-1])["per_scale"]
frac = [0.06, 0.07, 0.08, 0.10, 0.14, 0.55]
its = [max(200, int(f * total_s * r["steps_per_s"] * 0.85)) for f, r in zip(frac, rows)]  # 15% for data/logging
fade = [0] + [max(1, int(0.3 * i / 32)) for i in its[1:]]
print(f"--set train.iterations={json.dumps(its).replace(' ', '')} --set train.fade_in_jumps={json.dumps(fade).replace(' ', '')}")
PY
)
  echo "schedule: $SCHED"
  python3 -m darkgan train --data $DATA --preset paper --temperature 2 --out $RUN --device cuda \
    --max-minutes "$THIS" --no-progress $SCHED --set "train.batch_size=$BATCH" \
    --set 'train.checkpoint_every=1000' --set 'train.log_every=250' --set 'train.sample_every=0' \
    "${RECIPE_SET[@]}"
else
  python3 -m darkgan train --data $DATA --out $RUN --device cuda --max-minutes "$THIS" --no-progress --resume
fi
mkdir -p $OUT/shipped
python3 -m darkgan export-generator "$RUN" --out $OUT/shipped --half
cp $DATA/vocabulary.json $OUT/vocabulary.json
cp $DATA/labels/*.npz $OUT/ 2>/dev/null || true
ls -la $OUT/shipped
