#!/usr/bin/env bash
# The closed-loop experiment of issue #6 with learned planners, on the AVDC protocol (11 tasks x corner/corner2/
# corner3, 240 x 320 renders), through the `tracegen` command line. Its rows, each a model trained here and benched:
#
#   scratch       the 165 target videos only, traces by TraceForge            (the paper's "scratch")
#   scratch_gt    the same videos, the simulator's exact traces                (isolates TraceForge's error)
#   pretrained    pretrained on the corpus only, no warm-up: zero-shot on the unseen benchmark tasks
#   warmup        pretrained on the corpus, warmed up on the TraceForge traces (the paper's headline setting)
#   warmup_gt     pretrained, warmed up on the exact traces
#   cross         pretrained, warmed up on the target tasks recorded with the hand-like effector instead of the
#                 Sawyer (TraceForge traces), benched with the Sawyer         (sim analogue of human -> robot)
#   cross_painted the cross model, benched with the Sawyer cross-painted as the hand (`--observe-as hand`: the
#                 robot masked out of each observation, filled in, and the hand drawn at its pose)
#
#   [REC=runs/full/record] [OUT=runs/closed_loop] [PRETRAIN_STEPS=2000] [WARMUP_STEPS=1000] [SCRATCH_STEPS=3000] \
#   [PRETRAIN_EPISODES=1] [TARGET_EPISODES=5] [SEEDS=25] [THREADS=2] [WORKERS=2] \
#   [ROWS="scratch scratch_gt pretrained warmup warmup_gt cross cross_painted"] \
#   [SEED=0] \
#   [FORGE_ARGS="--set tracker.surface_iters=4"] [MODEL_ARGS="retrieval=true"] [PLAN_ARGS="--steps 1"] \
#   bash benchmarks/closed_loop_models.sh
#
# REC holds the recorded episodes, as the record stage of `tracegen demo --full` writes them (this script runs that
# stage when REC does not exist: 582 episodes, 8 min on a quiet 2-core machine, ~25 min on a busy one), plus the
# cross-embodiment set it records itself for the cross rows (165 episodes, ~5 min):
#   pretrain/    every Meta-World task that is NOT a benchmark task x {sawyer, floating gripper, hand} x 3 cameras
#   target/      5 demonstrations per benchmark task x camera (165 videos, seeds >= 1000, as AVDC's)
#   heldout/     2 more episodes per task x camera (seeds >= 1500) for trace accuracy
#   cross_hand/  target/'s corpus with the hand-like effector (`tracegen sim corpus --embodiment hand`)
#
# PRETRAIN_EPISODES=N records the pretraining corpus with N seeds per task x embodiment instead of REC's one, into
# OUT/pretrain_record (1,755 episodes for N=5, ~20 min; the seeds REC already holds are linked, not recorded again);
# TARGET_EPISODES=N records N demonstrations per benchmark task x camera instead of 5 (seeds 1000.., into
# OUT/target_record; 825 videos for N=25, ~20 min; N >= 5), for the scratch and warm-up rows' dependence on the
# number of demonstrations (the cross rows keep their 5 hand videos). Both need an OUT of their own: a trace set
# that exists in OUT is not made again. A row makes only the trace sets it
# uses (OUT/traces/...), when it comes to them; ROWS=traces makes every set and trains nothing.
# The pretraining corpus uses the simulator's exact traces (`tracegen convert`), which saves TraceForge's time on
# its videos; it holds none of the 11 benchmark tasks. Warm-up: lr 2e-4 (the official config's decoder rate).
# Every model: the default preset, moving points weighted 1 + 4 in the loss. Evaluation seeds 0..SEEDS-1 (the
# protocol's 25 by default). SEED=N (not 0) trains each row's model with training seed N, into OUT/ROW_sN (the
# pretrained model every warm-up starts from stays the one of seed 0): the spread of one recipe over training runs. Every step resumes: a finished one is skipped, a killed training run continues from
# its last checkpoint, a killed bench from its per-episode log. A run is named by its row and SEED only: `tracegen
# train` refuses to resume one with other MODEL_ARGS than it was started with, so give another recipe its own OUT.
set -euo pipefail
REC=${REC:-runs/full/record}
OUT=${OUT:-runs/closed_loop}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-2000}
WARMUP_STEPS=${WARMUP_STEPS:-1000}
SCRATCH_STEPS=${SCRATCH_STEPS:-3000}
PRETRAIN_EPISODES=${PRETRAIN_EPISODES:-1}
TARGET_EPISODES=${TARGET_EPISODES:-5}
SEEDS=${SEEDS:-25}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
ROWS=${ROWS:-scratch scratch_gt pretrained warmup warmup_gt cross cross_painted}
SEED=${SEED:-0}
TG=${TG:-tracegen}
FORGE_ARGS=${FORGE_ARGS:-}  # extra `tracegen forge` options for the TraceForge trace sets
MODEL_ARGS=${MODEL_ARGS:-}  # extra model settings for the models trained from scratch (a warm-up keeps its init's)
PLAN_ARGS=${PLAN_ARGS:-}  # sampler options of `eval-traces` and `bench`, e.g. "--steps 1" (one ODE step)
row_sets() {  # $1 = a row: the trace sets it trains on (every row is also scored on heldout)
  case $1 in
    scratch) echo target ;;
    scratch_gt) echo target_gt ;;
    pretrained) echo pretrain ;;
    warmup) echo pretrain target ;;
    warmup_gt) echo pretrain target_gt ;;
    cross | cross_painted) echo pretrain cross_hand ;;
    traces) echo target target_gt cross_hand pretrain ;;  # not a row: every trace set, no model
    *) echo "unknown row $1 (scratch, scratch_gt, pretrained, warmup, warmup_gt, cross, cross_painted, traces)" >&2
      exit 2 ;;
  esac
}
for row in $ROWS; do row_sets "$row" > /dev/null; done  # a misspelt row stops the script before any work
if [ "$TARGET_EPISODES" -lt 5 ]; then  # REC's five are linked in: fewer cannot be taken out
  echo "TARGET_EPISODES=$TARGET_EPISODES: use 5 (REC's demonstrations) or more" >&2; exit 2
fi
mkdir -p "$OUT"

if [ ! -d "$REC/target" ]; then  # the record stage of `tracegen demo --full`, into REC's parent
  python -c "from tracegen.demo.config import make_config; from tracegen.demo.run import run_demo; \
run_demo(make_config('full', out='$(dirname "$REC")', stages=['record']))"
fi
more_seeds() {  # $1 = a recorded set of REC, $2 = seeds per entry: prints the folder (relative to REC) holding them
  local set=$1 episodes=$2 dest="$OUT/${1}_record"
  if [ ! -d "$dest" ]; then  # hard links: REC's seeds are not simulated again (renamed into place when complete)
    rm -rf "$dest.tmp" && cp -al "$REC/$set" "$dest.tmp" && mv "$dest.tmp" "$dest" || return
  fi
  $TG sim corpus "$REC/$set/corpus.json" --episodes "$episodes" --out "$dest" --workers "$WORKERS" --no-progress \
    >&2 || return  # resumable: seeds whose episodes exist are not simulated again
  realpath --relative-to="$REC" "$dest"
}
recorded() {  # $1 = pretrain | target: the folder (relative to REC) of its videos, more seeds recorded if asked
  case $1 in
    pretrain) if [ "$PRETRAIN_EPISODES" = 1 ]; then echo pretrain; else more_seeds pretrain "$PRETRAIN_EPISODES"; fi ;;
    target) if [ "$TARGET_EPISODES" = 5 ]; then echo target; else more_seeds target "$TARGET_EPISODES"; fi ;;
  esac
}
traces() {  # $1 = trace set name, $2 = recorded set (relative to REC), $3 = forge | exact
  # shellcheck disable=SC2086  # FORGE_ARGS holds several words
  if [ "$3" = forge ]; then $TG forge "$REC/$2" --out "$OUT/traces/$1" --camera given --workers "$WORKERS" $FORGE_ARGS
  else $TG convert "$REC/$2" "$OUT/traces/$1" --to tracegen; fi
}
make_set() {  # $1 = a trace set of OUT/traces: made once, from its recorded videos
  [ ! -d "$OUT/traces/$1" ] || return 0
  local rec
  case $1 in
    target | target_gt) rec=$(recorded target) ;;  # a plain assignment: a failed recording stops the script
    pretrain) rec=$(recorded pretrain) ;;
    cross_hand) rec=cross_hand
      [ -f "$REC/cross_hand/corpus_summary.json" ] || \
        $TG sim corpus "$REC/target/corpus.json" --embodiment hand --out "$REC/cross_hand" --no-progress ;;
    heldout) rec=heldout ;;
  esac
  case $1 in target | cross_hand) traces "$1" "$rec" forge ;; *) traces "$1" "$rec" exact ;; esac
}

train() {  # $1 = run name, $2 = training seed, then `tracegen train` arguments (a killed or finished run resumes)
  local name=$1 seed=$2; shift 2
  $TG train --out "$OUT/$name" threads="$THREADS" moving_weight=4 seed="$seed" "$@"
}
warmup() {  # $1 = run name, $2 = trace set
  train "$1" "$SEED" --data "$OUT/traces/$2" --init "$OUT/pretrained" --steps "$WARMUP_STEPS" lr=2e-4 \
    warmup_steps=10 val_fraction=0
}
for row in $ROWS; do
  for set in $(row_sets "$row") heldout; do make_set "$set"; done
  [ "$row" != traces ] || continue
  run=$row
  [ "$SEED" = 0 ] || [ "$row" = pretrained ] || run=${row}_s$SEED
  case $row in
    # shellcheck disable=SC2086  # MODEL_ARGS holds several words
    scratch) train "$run" "$SEED" --data "$OUT/traces/target" --steps "$SCRATCH_STEPS" val_fraction=0 $MODEL_ARGS ;;
    # shellcheck disable=SC2086
    scratch_gt) train "$run" "$SEED" --data "$OUT/traces/target_gt" --steps "$SCRATCH_STEPS" val_fraction=0 \
      $MODEL_ARGS ;;
    pretrained | warmup | warmup_gt | cross | cross_painted)
      # shellcheck disable=SC2086
      train pretrained 0 --data "$OUT/traces/pretrain" --steps "$PRETRAIN_STEPS" $MODEL_ARGS
      case $row in warmup) warmup "$run" target ;; warmup_gt) warmup "$run" target_gt ;;
        cross | cross_painted) run=${run/cross_painted/cross}; warmup "$run" cross_hand ;; pretrained) ;; esac ;;
  esac
  # shellcheck disable=SC2086  # PLAN_ARGS holds several words
  $TG eval-traces --ckpt "$OUT/$run" --data "$OUT/traces/heldout" --split all --json "$OUT/eval_$run.json" \
    $PLAN_ARGS > /dev/null
  paint=()
  [ "${row%_painted}" = "$row" ] || paint=(--observe-as hand)
  # shellcheck disable=SC2086
  $TG bench metaworld --protocol avdc --ckpt "$OUT/$run" --seeds "$SEEDS" --workers "$WORKERS" \
    --json "$OUT/bench_${run/cross/$row}.json" $PLAN_ARGS "${paint[@]}"
done
