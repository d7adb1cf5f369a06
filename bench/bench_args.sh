# The arguments of the bench/*.sh scripts that run bench_train_step several times:
#   [BUILD_DIR=build] [REPS] [THREADS] [-- flags for bench_train_step]
# Sourced; `bench_args NAME DEFAULT_REPS DEFAULT_THREADS "$@"` sets build (made absolute), reps,
# threads, bench (BUILD_DIR/bench_train_step, which must exist) and the array bench_flags (what
# follows --); a bad REPS, or a missing bench, ends the script with a one-line error.
bench_args() {
    local name=$1 default_reps=$2 default_threads=$3
    shift 3
    local root positional=()
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    while (($#)) && [[ "$1" != "--" ]]; do positional+=("$1"); shift; done
    if (($#)); then shift; fi
    bench_flags=("$@")
    build="${positional[0]:-build}"
    reps="${positional[1]:-$default_reps}"
    threads="${positional[2]:-$default_threads}"
    case "$build" in /*) ;; *) build="$root/$build" ;; esac
    bench="$build/bench_train_step"
    [[ -x "$bench" ]] || { echo "$name: $bench not found; cmake --build $build --target bench_train_step" >&2; exit 1; }
    [[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "$name: REPS must be a positive whole number (got '$reps')" >&2; exit 2; }
}
