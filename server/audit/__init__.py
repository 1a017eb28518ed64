"""`emofl audit`: checking every device's privacy ledger against the tree heads the server kept
(signatures, hash chain, Merkle roots, split views), recomputing each device's ε with the
accountant it used and with Google's dp-accounting PLD accountant, and reporting it all as a
table, JSON and an HTML page. It reads through private copies and never writes to what it
audits. It lives on the server side because the server's tree heads are its anchor; it reads
device ledgers only through the formats in `emofl.common.privacy`, never the device's code.
"""
