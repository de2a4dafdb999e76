#!/usr/bin/env bash
# Runs fuzz targets for a bounded time each and writes a summary table.
#
#   fuzz/run.sh SECONDS OUT.md TARGET...
#
# Each target runs alone (one libFuzzer process: no -jobs/-fork), starting from its committed
# seeds (fuzz/seeds/T) and the generated corpus (fuzz/corpus/T, gitignored, grows across
# runs). Crash inputs land in fuzz/artifacts/T. Exit status 1 if any target crashed.
set -uo pipefail
cd "$(dirname "$0")"
seconds=$1; out=$2; shift 2
toolchain=${FUZZ_TOOLCHAIN:-nightly}
logs=target/fuzz-logs
mkdir -p "$logs"

cargo +"$toolchain" fuzz build >"$logs/build.log" 2>&1 || { tail -30 "$logs/build.log"; exit 2; }

rows=()
failed=0
start_all=$(date +%s)
for t in "$@"; do
    mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    before=$(ls "artifacts/$t" | wc -l)
    echo "fuzz: $t for ${seconds}s"
    cargo +"$toolchain" fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        "${dict[@]}" >"$logs/$t.log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$logs/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "corpus/$t" | wc -l)
    crashes=$(( $(ls "artifacts/$t" | wc -l) - before ))
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed=1
        echo "fuzz: $t FAILED (status $status); see fuzz/$logs/$t.log and fuzz/artifacts/$t"
        grep -m3 -E 'panicked|ERROR: |SUMMARY' "$logs/$t.log" | sed 's/^/    /'
    fi
    rows+=("| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | $corpus | $crashes | ${rss:-?} |")
done
total=$(( $(date +%s) - start_all ))

{
    echo "# Fuzzing run"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), ${seconds} s per target, $(rustc +"$toolchain" --version), $(nproc) CPUs; total ${total} s."
    echo
    echo "| target | executions | exec/s | coverage | corpus | new crashes | peak RSS MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
exit $failed
