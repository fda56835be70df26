#!/usr/bin/env bash
# The shipped baseline entries of the board, produced by the project's own commands only:
#   metaenvs train -> metaenvs evaluate --out (recording the train command) -> metaenvs submit --init.
# Each entry records these commands (result.commands and submit_command). Runs go to $RUNS (not
# committed); the board keeps the small initializations under inits/ so `metaenvs board verify` works.
# Usage (from the repository root): METAENVS_DATA=... bash leaderboard/board/make_entries.sh [ID ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/tmp/metaenvs-board-runs}
BOARD=leaderboard/board
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

entry() {  # entry DIST ALGO META_STEPS [extra train flags...]
  local dist=$1 algo=$2 steps=$3; shift 3
  local name; name="$(echo "$dist" | tr '/' '_')-$algo"
  local train=(metaenvs train --dist "$dist" --algo "$algo" --meta-steps "$steps" --meta-batch 5 --seed 0
               --out "$RUNS/$name" --no-progress "$@")
  "${train[@]}"
  metaenvs evaluate --dist "$dist" --init "$RUNS/$name/init.safetensors" --out "$RUNS/$name/result.json" \
    --no-progress --submitter "metaenvs baselines" --prior-command "${train[*]}"
  metaenvs submit "$RUNS/$name/result.json" --init "$RUNS/$name/init.safetensors" --board "$BOARD"
}

SINUSOID=Synthetic/Sinusoid-v0
JESTER=Ratings/Jester1_10shot15val-v0
entry $SINUSOID scratch 1
entry $SINUSOID reptile 300
entry $SINUSOID leap 300 --meta-lr 0.01
entry $SINUSOID fomaml 300
entry $SINUSOID maml 300
entry $JESTER scratch 1
entry $JESTER reptile 100
entry $JESTER maml 100
metaenvs board show --board "$BOARD"
