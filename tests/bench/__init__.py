"""The bench: process-count scaling experiments (make bench, tests/bench/run),
their smoke test (test_bench_smoke.py), a soak (tests/bench/soak) and a
profile (tests/bench/profile).  The programs run from the repository root
as modules of the tests package; tests/bench/run, soak and profile are
their launchers."""
