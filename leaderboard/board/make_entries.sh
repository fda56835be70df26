#!/usr/bin/env bash
# The shipped baseline entries of the board, produced by the project's own commands only:
#   [metaenvs train] -> metaenvs evaluate --out (recording the train command) -> metaenvs submit --init,
# then `metaenvs board verify` of every entry. Each entry records these commands
# (result.commands and submit_command); each verification record its own command.
#
# By default the stored initializations under inits/ are re-evaluated under the installed suite's
# official protocol (what to do when a protocol's hash changes; with --train too, about 8 minutes on 2 CPU cores). With
# --train they are meta-trained again first, with the commands listed below. Scratch entries train
# from a fresh random initialization per seed and have no initialization file.
# Remove the old entries/ and verifications/ first (they no longer match the installed protocol).
# Usage (from anywhere): METAENVS_DATA=... bash leaderboard/board/make_entries.sh [--train]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/tmp/metaenvs-board-runs}
BOARD=leaderboard/board
MODE=${1:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
TO_VERIFY=()

submit() {  # submit RESULT DIST [--init INIT]: add the entry; remember it for verification
  local result=$1; shift 2
  local out; out="$(metaenvs submit "$result" --board "$BOARD" "$@")"
  echo "$out"
  TO_VERIFY+=("$(echo "$out" | awk '/^entry /{print $2; exit}')")
}

entry() {  # entry DIST ALGO META_STEPS INIT_SHA256 [extra train flags...]
  local dist=$1 algo=$2 steps=$3 sha=$4; shift 4
  local name; name="$(echo "$dist" | tr '/' '_')-$algo"
  local train=(metaenvs train --dist "$dist" --algo "$algo" --meta-steps "$steps" --meta-batch 5 --seed 0
               --out "$RUNS/$name" --no-progress "$@")
  local init="$BOARD/inits/$sha.safetensors"
  if [[ $MODE == --train ]]; then "${train[@]}"; init="$RUNS/$name/init.safetensors"; fi
  mkdir -p "$RUNS/$name"
  metaenvs evaluate --dist "$dist" --init "$init" --out "$RUNS/$name/result.json" \
    --no-progress --submitter "metaenvs baselines" --prior-command "${train[*]}"
  submit "$RUNS/$name/result.json" "$dist" --init "$init"
}

scratch() {  # scratch DIST: every seed trains from its own fresh random initialization
  local dist=$1 name; name="$(echo "$1" | tr '/' '_')-scratch"
  mkdir -p "$RUNS/$name"
  metaenvs evaluate --dist "$dist" --out "$RUNS/$name/result.json" --no-progress --submitter "metaenvs baselines"
  submit "$RUNS/$name/result.json" "$dist"
}

baseline() {  # baseline DIST NAME: a trivial baseline (baselines/trivial.py) under the official protocol
  local dist=$1 b=$2 name; name="$(echo "$1" | tr '/' '_')-baseline-$2"
  mkdir -p "$RUNS/$name"
  metaenvs evaluate --dist "$dist" --baseline "$b" --out "$RUNS/$name/result.json" --no-progress \
    --submitter "metaenvs baselines"
  submit "$RUNS/$name/result.json" "$dist"
}

bench_entry() {  # bench_entry DIST NAME SHA256 RUN_INIT BENCH: a seed-0 initialization trained by a committed
  # benchmark (BENCH; with --train it is run when RUN_INIT, the file it writes, is missing)
  local dist=$1 name=$2 init="$BOARD/inits/$3.safetensors" bench=$5
  if [[ $MODE == --train ]]; then
    init=$4
    [[ -f $init ]] || $bench
  fi
  mkdir -p "$RUNS/$name"
  metaenvs evaluate --dist "$dist" --init "$init" --out "$RUNS/$name/result.json" \
    --no-progress --submitter "metaenvs baselines" --prior-command "$bench (seed 0)"
  submit "$RUNS/$name/result.json" "$dist" --init "$init"
}

ratings_entry() {  # ratings_entry VARIANT METHOD INIT_SHA256: a Table 2 initialization of amaml_ratings.py
  bench_entry "Ratings/$1-v0" "$1-$2" "$3" "benchmarks/results/amaml_ratings/runs/$1-v0-t2-$2-s0/train/init.safetensors" \
    "python benchmarks/amaml_ratings.py --tables 2"
}

multicv_entry() {  # multicv_entry HELD ALGO INIT_SHA256: an initialization of leap_multicv.py
  bench_entry "Vision/MultiCVLocal_$1-v0" "multicv-$1-$2" "$3" "benchmarks/results/leap_multicv/runs/$1-$2-s0/train/init.safetensors" \
    "python benchmarks/leap_multicv.py --seeds 3 --meta-steps 20 --inner-steps 100"
}

section() {  # section NAME: whether to make this section's entries (SECTIONS=a,b; default: all)
  [[ ${SECTIONS:-all} == all || ,${SECTIONS}, == *,$1,* ]]
}

SINUSOID=Synthetic/Sinusoid-v0
if section regression; then
scratch $SINUSOID
entry $SINUSOID reptile 300 6706a0d5ec99b749a612de952c1e5076c771f98e9cde918f725a56f948f3f8af
entry $SINUSOID leap 300 f97225b2fb1ee40ce8e6d2f46ea152b460b7e01c14c5de40e1af2fe9b2e4a44f --meta-lr 0.01
entry $SINUSOID fomaml 300 ef16e8c603a9d35f8f17ab4db9a692f4877b83b237e983116d56dbbd73c47085
entry $SINUSOID maml 300 69e1d9d464589e08b816990f257a3b260f66bc7304e97d490fa4a232b983181b
for b in support_mean mean_function; do baseline $SINUSOID $b; done
for dist in Synthetic/CosMixture50shot-v0 Synthetic/Alpine50shot-v0; do  # A-MAML's regression families
  scratch $dist
  for b in support_mean mean_function; do baseline $dist $b; done
done
fi
# Leap's Omniglot alphabets: scratch and the nearest-centroid baseline under the official protocol (64 filters).
# No meta-learned entry: the 64-filter recipe meta-trains at about 30 minutes per run on this CPU.
if section omniglot; then
  scratch Vision/OmniglotAlphabets-v0
  baseline Vision/OmniglotAlphabets-v0 nearest_centroid
fi
# Ratings (A-MAML Table 2's protocol: 100 inner steps): the trivial baselines, scratch, and the seed-0
# initialization of every method of `python benchmarks/amaml_ratings.py --tables 2` (1000 meta steps for
# MAML / FOMAML / Reptile, 300 for iMAML, 50 for A-MAML; with --train it is run when its runs are missing).
# The shipped Table 2 initializations (seed 0), as METHOD SHA256 lines per data set.
RATINGS_JESTER1_10=${RATINGS_JESTER1_10:-"maml 1cd3bd8baa84f27e8c0eb1ea5c9e2f45a618d3d850546fee2629bb539d4a1b7a
fomaml 6602f3560ef9cf10c9a87446efd32377fb581e1e929a76233d4763e214a60ade
reptile 715d7aca64310fbf713eadb33f5799d1d333635bf15bb5ff1af9ed9a246c11b6
imaml ff7c2c031ffaf8fbfb55dfb50c9e48a5bd4709c47cd0a3203876b64e0dd1feeb
amaml a4ed3274444fe15932c7ce824dea020c1a3aa9568c923585b3572d573e4adb27"}
RATINGS_JESTER1_20=${RATINGS_JESTER1_20:-"maml c54645271aa282db22a85ab73cc5a38e044a786682fef7b5baa14eb386c085f9
fomaml 13f33d9baaa3badac394e750b39ae34cda688488aa79b91ad6d32c360e78585e
reptile 1bf8cc2c7949a6a964cf56914ef6e11e697d0781c6dd2715ad39b0cc911d014a
imaml 777ec78e875ae663608cf0aaff63a891429e3bf7ea4fac6a1d74e59e632b4d00
amaml f9aa535876bffa564d0f90255559e3f7ee9441ae9c80919ae44c026b069f26c1"}
RATINGS_ML100K_10=${RATINGS_ML100K_10:-"maml 0ff7a5af87dcc220dee4e938f9c613f2656a3532fc4f8ed63b03ad9d67cd358f
fomaml 3ea2026fdeae2d84f7cb5b9f0f7cccfe821c4c1c39d2df0a85893364b13306d2
reptile fdf3bcb4d5da0c0b1c259bafe8052330afe7088fcdf0e848c69f850480e213b3
imaml 228ea245025b5758090c52a66af117a617643edda31edbbf2b50a39b4db1e3b9
amaml 1d6eea433821ad831178e920a4c49bc59d9032e02f867d5f8cbbf37f24c867e9"}
RATINGS_ML100K_20=${RATINGS_ML100K_20:-"maml 3d4888fc37d6d5ce0867d7f098dc934f02bb0debb56687ca7c83d403f039f659
fomaml 876db179e51113daed97c44c4b93e5afd37ba3022d36ce4b35fa5b134d6c0752
reptile 23598093e48f2b0c827fb69fa5a598325f2684c3c83b8bc04eee3b28930237b7
imaml 1ca96bc72f79a550f4d2bf69968d283b7d447dd8ed43fba433f50b19e93cfba3
amaml bcc43aff1715985acc37a5f8463a10a41c88ac5bcd040d437de929a33770aa2c"}
ratings_inits() {  # the Table 2 initializations shipped for VARIANT, as "METHOD SHA256" lines
  case $1 in
    Jester1_10shot15val) echo "${RATINGS_JESTER1_10:-}" ;;
    Jester1_20shot30val) echo "${RATINGS_JESTER1_20:-}" ;;
    MovieLens100K_10shot15val) echo "${RATINGS_ML100K_10:-}" ;;
    MovieLens100K_20shot30val) echo "${RATINGS_ML100K_20:-}" ;;
  esac
}
if section ratings; then
for variant in Jester1_10shot15val Jester1_20shot30val MovieLens100K_10shot15val MovieLens100K_20shot30val; do
  scratch Ratings/$variant-v0
  for b in global_mean item_mean user_mean item_mean_user_offset; do baseline Ratings/$variant-v0 $b; done
  while read -r method sha; do
    [[ -n $method ]] && ratings_entry $variant "$method" "$sha"
  done <<< "$(ratings_inits $variant)"
done
fi
# Multi-CV on the data on hand (Vision/MultiCVLocal_<held>-v0): scratch, the nearest-centroid baseline and
# the seed-0 initializations of Leap, Reptile and multi-headed fine-tuning from
# `python benchmarks/leap_multicv.py --seeds 3 --meta-steps 20 --inner-steps 100`.
MULTICV_INITS=${MULTICV_INITS:-""}
if section multicv; then
  for held in mnist cifar10 digits; do
    scratch Vision/MultiCVLocal_$held-v0
    baseline Vision/MultiCVLocal_$held-v0 nearest_centroid
  done
  while read -r held algo sha; do
    [[ -n $held ]] && multicv_entry "$held" "$algo" "$sha"
  done <<< "$MULTICV_INITS"
fi
# Meta-World (opt in with METAWORLD=1: about an hour per distribution on one core): the result files that
# `python benchmarks/metaworld.py --config cpu --dist D` writes (it meta-trains with baselines.meta_train
# and evaluates under the official protocol, recording its command), submitted with their initializations.
# RL²'s results are a custom protocol and are not submitted.
if [[ ${METAWORLD:-0} == 1 ]]; then
  for dist in MetaWorld/ML1-reach-v3 MetaWorld/ML10-v3; do
    dir=benchmarks/results/metaworld/cpu/${dist#MetaWorld/}
    [[ -f $dir/result.json ]] || python benchmarks/metaworld.py --config cpu --dist "$dist" --no-progress
    for algo in scratch reptile leap mtl; do
      if [[ $algo == scratch ]]; then submit "$dir/eval_${algo}_0.json" "$dist"
      else submit "$dir/eval_${algo}_0.json" "$dist" --init "$dir/runs/${algo}_0/init.safetensors"; fi
    done
  done
fi
# Atari-100k (opt in with ATARI100K=1: about 1.5 hours on 2 cores): the result files that
# `python benchmarks/atari_leap.py --config 100k --torch-threads 2` writes under the official protocol.
if [[ ${ATARI100K:-0} == 1 ]]; then
  dir=benchmarks/results/atari_leap_100k
  [[ -f $dir/result.json ]] || python benchmarks/atari_leap.py --config 100k --torch-threads 2 --no-progress
  for algo in scratch leap reptile; do
    if [[ $algo == scratch ]]; then submit "$dir/eval_${algo}_0.json" Atari/LeapPool-100k-v0
    else submit "$dir/eval_${algo}_0.json" Atari/LeapPool-100k-v0 --init "$dir/runs/${algo}_0/init.safetensors"; fi
  done
fi
for id in "${TO_VERIFY[@]}"; do metaenvs board verify "$id" --board "$BOARD" --no-progress; done
metaenvs board show --board "$BOARD"
