# Benchmarks (make bench): see docs/bench.md.
