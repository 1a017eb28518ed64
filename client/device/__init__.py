"""An enrolled device of a deployed federation: its keys, its folder (state, consent, enrollment
request and bundle) and the Flower SuperNode that joins the operator's SuperLink.

Imports `emofl.common` only, never `emofl.server`.
"""
