"""The libFuzzer targets (fuzz_*.c, built by make fuzz-build) and seeds.py,
which makes their seed corpora: python3 -m tests.fuzz.seeds."""
