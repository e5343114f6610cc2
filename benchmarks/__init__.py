"""Benchmarks: `python -m benchmarks.NAME`; never collected by pytest."""
