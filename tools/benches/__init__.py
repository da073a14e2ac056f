"""Benchmarks, one module per capability; `make bench` runs them all (tools/bench.py)."""
