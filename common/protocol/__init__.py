"""What crosses the wire between device and server: run settings, message record keys, the wire
form of encrypted updates, and the encrypted-head gRPC schema and its generated modules.
"""
