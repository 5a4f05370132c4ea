#!/usr/bin/env bash
# Pretraining on other tasks and embodiments + warm-up on five videos per task, vs training from scratch on the
# same five videos; trace accuracy on held-out seeds of the 11 AVDC Meta-World tasks, beside static and
# nearest-neighbour baselines. Everything through the `tracegen` command line.
#
#   [OUT=runs/transfer] [PRETRAIN_STEPS=6000] [WARMUP_STEPS=600] [SCRATCH_STEPS=2000] [SIZE=128] [THREADS=2] \
#     bash benchmarks/model_transfer.sh
#
# Scratch gets more steps than the warm-up so that both are trained to convergence on the same five videos.
#
# Prints one JSON line per evaluated model; the full metrics are in $OUT/eval_*.json.
set -euo pipefail
OUT=${OUT:-runs/transfer}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-6000}
WARMUP_STEPS=${WARMUP_STEPS:-600}
SCRATCH_STEPS=${SCRATCH_STEPS:-2000}
SIZE=${SIZE:-128}
THREADS=${THREADS:-2}  # torch threads per training run; 1 when other jobs share the cores (OpenMP spins badly)
PRETRAIN_TASKS=${PRETRAIN_TASKS:-"bin-picking box-close coffee-pull coffee-push dial-turn disassemble drawer-close drawer-open lever-pull peg-unplug-side pick-out-of-hole pick-place plate-slide plate-slide-back push push-back reach stick-push sweep window-close window-open"}
AVDC="door-open door-close basketball shelf-place button-press button-press-topdown faucet-close faucet-open handle-press hammer assembly"
TG=${TG:-tracegen}
mkdir -p "$OUT"

corpus() {  # $1 = name, $2 = json list of entries; skipped when its traces exist (written atomically)
  [ -d "$OUT/traces/$1" ] && return
  cat > "$OUT/$1.json" <<EOF
{"record": {"height": $SIZE, "width": $SIZE}, "entry": $2}
EOF
  $TG sim corpus "$OUT/$1.json" --out "$OUT/episodes/$1"
  $TG convert "$OUT/episodes/$1" "$OUT/traces/$1" --to tracegen
}
tasks_json() { printf '%s\n' $1 | sed 's/.*/"&"/' | paste -sd, | sed 's/.*/[&]/'; }

# none of the 11 benchmark tasks in the pretraining corpus; three embodiments
corpus pretrain "[{\"suite\": \"metaworld\", \"tasks\": $(tasks_json "$PRETRAIN_TASKS"), \"embodiments\": [\"sawyer\", \"floating_gripper\", \"hand\"], \"cameras\": [\"corner\"], \"episodes\": 2, \"seed\": 1000}]"
# five demonstrations per benchmark task (seeds >= 1000, disjoint from the evaluation seeds 0..24)
corpus target "[{\"suite\": \"metaworld\", \"tasks\": $(tasks_json "$AVDC"), \"embodiment\": \"sawyer\", \"cameras\": [\"corner\"], \"episodes\": 5, \"seed\": 1000}]"
# held-out: evaluation seeds 0, 1
corpus heldout "[{\"suite\": \"metaworld\", \"tasks\": $(tasks_json "$AVDC"), \"embodiment\": \"sawyer\", \"cameras\": [\"corner\"], \"episodes\": 2, \"seed\": 0}]"

$TG train --data "$OUT/traces/pretrain" --out "$OUT/pretrained" --steps "$PRETRAIN_STEPS" threads="$THREADS"
$TG train --data "$OUT/traces/target" --out "$OUT/warmup" --init "$OUT/pretrained" --steps "$WARMUP_STEPS" threads="$THREADS" \
  lr=1e-4 warmup_steps=10 val_fraction=0
$TG train --data "$OUT/traces/target" --out "$OUT/scratch" --steps "$SCRATCH_STEPS" threads="$THREADS" val_fraction=0
for run in warmup scratch pretrained; do
  $TG eval-traces --ckpt "$OUT/$run" --data "$OUT/traces/heldout" --split all --samples 4 --json "$OUT/eval_$run.json" \
    | python -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'run': '$run', **{k: round(r[k], 3) for k in ('ade_px','fde_px','ade_cm','fde_cm','mse_norm','best_of_k_ade_px','static_ade_px','nn_ade_px','static_ade_cm','nn_ade_cm','ade_px_moving','static_ade_px_moving','nn_ade_px_moving','ade_cm_moving','static_ade_cm_moving','nn_ade_cm_moving')}, 'samples': r['samples']}))"
done
