#!/usr/bin/env bash
# Runs each cargo-fuzz target for a while: scripts/fuzz.sh [seconds-per-target] [target...]
#
# Defaults: 60 s, every target in fuzz/Cargo.toml. Seeds come from fuzz/corpus/<target>/ (read
# only); what the fuzzer learns accumulates in fuzz/target/corpus/<target>/ and crashes land in
# fuzz/artifacts/<target>/. Needs cargo-fuzz (installed here if missing) and either a nightly
# toolchain or, failing that, stable with RUSTC_BOOTSTRAP=1 (sanitizer flags are unstable).
# Exit status: 0 if no target crashed, 1 otherwise; every target runs either way.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

failed=()
summary=()
for target in "${targets[@]}"; do
    learned=fuzz/target/corpus/$target
    mkdir -p "$learned"
    seeds=()
    if [ -d "fuzz/corpus/$target" ]; then
        seeds=("fuzz/corpus/$target")
    fi
    log=$(mktemp)
    echo "== $target: ${seconds}s"
    set +e
    "${fuzz[@]}" run --fuzz-dir fuzz "$target" "$learned" "${seeds[@]}" \
        -- -max_total_time="$seconds" -print_final_stats=1 2>&1 |
        tee "$log" | grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+(INITED|DONE))|ERROR|panicked'
    status=${PIPESTATUS[0]}
    set -e
    runs=$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after $runs runs; crash inputs go to fuzz/artifacts/$target/")
        tail -n 40 "$log"
    else
        summary+=("$target: $runs runs in ${seconds}s, no crash")
    fi
    rm -f "$log"
done

echo
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
