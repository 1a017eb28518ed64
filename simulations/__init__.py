"""One-machine runs: simulation, training drivers, test galleries, benchmarks. May import all.
"""
