"""Benchmarks against the framework's own ceiling: the answer path, broadcasts, analysis (`make bench`)."""
