"""What crosses the wire between device and server: run settings (declared once in
`run_settings`, with `setting` saying what a setting is and `choices` the allowed values),
message record keys and the typed train reply (`messages`), the wire form of encrypted updates
(`ckks_records`), and the encrypted-head gRPC schema and its generated modules. It builds on
Flower's record types, which both sides speak.
"""
