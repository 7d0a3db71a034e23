#!/usr/bin/env python3
"""test_tfb_lighttpd.py: every TFB route and the project's own HTTP rules, with
the stack behind lighttpd (see tfb_stack_tests.py)."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfb_stack_tests  # noqa: E402

if __name__ == "__main__":
    tfb_stack_tests.run("lighttpd")
