"""Drivers for the figures in docs/benchmarks.md; each prints JSON and can write it to a file."""
