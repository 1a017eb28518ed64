"""What device and server share: data, models, privacy accounting, CKKS, the wire protocol.

Imports neither `emofl.client` nor `emofl.server`.
"""
