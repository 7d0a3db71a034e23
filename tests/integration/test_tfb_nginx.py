"""test_tfb_nginx.py: every TFB route and the project's own HTTP rules, with
the stack behind nginx (see tfb_stack.py)."""

from .tfb_stack import run

if __name__ == "__main__":
    run("nginx")
