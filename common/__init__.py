"""What device and server share: data, models, privacy accounting, CKKS, the wire protocol.

Imports none of `emofl.client`, `emofl.server`, `emofl.simulations` or the CLI.
"""
