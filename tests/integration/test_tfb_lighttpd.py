"""test_tfb_lighttpd.py: every TFB route and the project's own HTTP rules, with
the stack behind lighttpd (see tfb_stack.py)."""

from .tfb_stack import run

if __name__ == "__main__":
    run("lighttpd")
