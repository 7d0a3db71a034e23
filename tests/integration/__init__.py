"""The integration tests: each test_*.py and pool_*.py is a program that
starts real servers (PostgreSQL, the pool, nginx, lighttpd) through the
kit and prints TAP.  Run from the repository root:

    python3 -m tests.integration.test_tfb_nginx

Two modules here are no program but the checks several share:
tfb_stack.py (test_tfb_nginx, test_tfb_lighttpd) and poolcases.py
(pool_fake, pool_real).
"""
