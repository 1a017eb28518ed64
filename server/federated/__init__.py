"""The federated coordinator: the Flower ServerApp, strategies with privacy bookkeeping and CKKS
aggregation, checkpoints, model cards, public pre-training.
"""
