"""The encrypted-head gRPC service: evaluates the linear softmax head on CKKS ciphertexts.
"""
