"""The operator's side of a deployed federation on Flower's deployment engine: the server folder
(certificates, Flower CLI settings, enrollment registry, public CKKS context), the SuperLink
behind a Fleet-only TLS proxy, enrollment and revocation, and run submission.

Imports `emofl.common` only, never `emofl.client`; it never holds a CKKS secret key.
"""
