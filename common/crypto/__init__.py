"""CKKS homomorphic encryption: the aggregation context and encrypted updates, key files, and the
encrypted-head parameters and packed slot layout.
"""
