"""Benchmarks: measurements run by hand, never timed assertions (see benchmarks/README.md)."""
