#!/usr/bin/env bash
# The closed-loop experiment of issue #6 with learned planners: pretrained + warm-up vs scratch, on the AVDC
# protocol (11 tasks x corner/corner2/corner3, 240 x 320 renders), through the `tracegen` command line.
#
#   [REC=runs/full/record] [OUT=runs/closed_loop] [PRETRAIN_STEPS=2000] [WARMUP_STEPS=600] [SCRATCH_STEPS=1000] \
#   [SEEDS=25] [THREADS=2] bash benchmarks/closed_loop_models.sh
#
# REC holds the recorded episodes in three sets, as the record stage of `tracegen demo --full` writes them (this
# script runs that stage when REC does not exist: 582 episodes, ~25 min on 2 cores):
#   pretrain/  every Meta-World task that is NOT a benchmark task x {sawyer, floating gripper, hand} x 3 cameras
#   target/    5 demonstrations per benchmark task x camera (165 videos, seeds >= 1000, as AVDC's)
#   heldout/   2 more episodes per task x camera (seeds >= 1500) for trace accuracy
#
# Traces: the target videos go through `tracegen forge` (RGB-D, given cameras) -- the scratch and warm-up models
# see only TraceForge's traces of the 165 videos; the pretraining corpus uses the simulator's exact traces
# (`tracegen convert`), which saves TraceForge's ~15 min on 351 more videos. Evaluation seeds 0..SEEDS-1 (the
# protocol's 25 by default); `tracegen bench` resumes a killed run from its per-episode log.
set -euo pipefail
REC=${REC:-runs/full/record}
OUT=${OUT:-runs/closed_loop}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-2000}
WARMUP_STEPS=${WARMUP_STEPS:-600}
SCRATCH_STEPS=${SCRATCH_STEPS:-1000}
SEEDS=${SEEDS:-25}
THREADS=${THREADS:-2}
TG=${TG:-tracegen}
mkdir -p "$OUT"

if [ ! -d "$REC" ]; then  # the record stage of `tracegen demo --full`, into REC's parent
  python -c "from tracegen.demo.config import make_config; from tracegen.demo.run import run_demo; \
run_demo(make_config('full', out='$(dirname "$REC")', stages=['record']))"
fi

[ -d "$OUT/traces/target" ] || $TG forge "$REC/target" --out "$OUT/traces/target" --camera given --workers 2
[ -d "$OUT/traces/pretrain" ] || $TG convert "$REC/pretrain" "$OUT/traces/pretrain" --to tracegen
[ -d "$OUT/traces/heldout" ] || $TG convert "$REC/heldout" "$OUT/traces/heldout" --to tracegen

train() {  # $1 = run name, then `tracegen train` arguments (a killed or finished run resumes from its state)
  local name=$1; shift
  $TG train --out "$OUT/$name" threads="$THREADS" "$@"
}
train pretrained --data "$OUT/traces/pretrain" --steps "$PRETRAIN_STEPS"
train warmup --data "$OUT/traces/target" --init "$OUT/pretrained" --steps "$WARMUP_STEPS" lr=1e-4 warmup_steps=10 \
  val_fraction=0
train scratch --data "$OUT/traces/target" --steps "$SCRATCH_STEPS" val_fraction=0

for run in warmup scratch; do
  $TG eval-traces --ckpt "$OUT/$run" --data "$OUT/traces/heldout" --split all --json "$OUT/eval_$run.json" > /dev/null
  $TG bench metaworld --protocol avdc --ckpt "$OUT/$run" --seeds "$SEEDS" --json "$OUT/bench_$run.json"
done
