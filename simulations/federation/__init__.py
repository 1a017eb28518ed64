"""One-machine federated runs: the `emofl simulate` runner on Flower's simulation engine, its
plots, and the README demo.
"""
