"""The coordinator: federated rounds and the encrypted-head service. It holds no CKKS secret key.

Imports `emofl.common` only, never `emofl.client`.
"""
