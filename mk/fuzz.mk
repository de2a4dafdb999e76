# Fuzzing targets (make fuzz): see docs/fuzzing.md.
