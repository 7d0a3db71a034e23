"""The tests of tfb-fcgi, one Python package.

    tests/kit/          the toolkit every test and the bench use; it knows
                        no test file
    tests/integration/  the integration tests, each a program
    tests/bench/        the scaling experiments (make bench) and their smoke
    tests/fuzz/         the libFuzzer targets, and seeds.py for their corpora

Run from the repository root, as tests/run does:

    python3 -m tests.integration.test_tfb_nginx

integration/ and bench/ import the kit and never each other.  Python
standard library only (the bench's charts: python3-matplotlib).
"""
