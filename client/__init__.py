"""The participant's device: federated DP training, on-device inference, meeting analysis.

Imports `emofl.common` only, never `emofl.server`.
"""
