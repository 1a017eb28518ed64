"""The integrity checks of one device's ledger against the tree heads the server received.

Every line returned names the client, the entry or the round's tree head, and what is wrong.
Nothing the server or device computed is taken on trust: signatures are verified under the
device's pinned (or enrolled) key, the chain and the Merkle roots are recomputed from the
entries' bytes, and each stored consistency proof is verified again.
"""

from dataclasses import dataclass

from emofl.common.privacy.checkpoint_note import (
    Checkpoint,
    NoteError,
    open_note,
    parse_verifier_key,
)
from emofl.common.privacy.merkle import root_of, verify_consistency
from emofl.common.privacy.signed_ledger import SignedEntry, entry_problems, merkle_leaves
from emofl.server.federated.tree_heads import StoredHead


@dataclass(frozen=True)
class VerifiedHead:
    """A stored tree head whose signature verified, with the checkpoint it signs."""

    stored: StoredHead
    checkpoint: Checkpoint


def verified_heads(client: int, key: str, heads: list[StoredHead]
                   ) -> tuple[list[VerifiedHead], list[str]]:
    """The client's heads whose signature verifies under `key`, and a line per other one."""
    good, failures = [], []
    for head in heads:
        try:
            good.append(VerifiedHead(head, Checkpoint.parse(open_note(head.note, key))))
        except NoteError as err:
            failures.append(f"client {client}: tree head of round {head.round}: {err}")
    return good, failures


def entry_failures(client: int, key: str, ledger_key: str,
                   entries: list[SignedEntry]) -> list[str]:
    """A line per entry whose signature, sequence number, chain link or values are wrong."""
    failures = []
    if ledger_key != key:
        failures.append(f"client {client}: the ledger names device key {ledger_key!r}, not "
                        f"the key the server holds for client {client}")
    public_key = parse_verifier_key(key)[1]
    return failures + [f"client {client}: {line}"
                       for line in entry_problems(entries, public_key, client)]


def head_failures(client: int, entries: list[SignedEntry],
                  heads: list[VerifiedHead]) -> list[str]:
    """A line per head the ledger does not reproduce, and per pair of heads that fork."""
    leaves = merkle_leaves(entries)
    failures = []
    for head in heads:
        size, where = head.checkpoint.size, f"client {client}: tree head of round "
        where += f"{head.stored.round} (size {size})"
        if size > len(leaves):
            failures.append(f"{where}: the ledger is truncated, it holds {len(leaves)} entries")
        elif root_of(leaves[:size]) != head.checkpoint.root:
            failures.append(f"{where}: entries 0..{size - 1} of the ledger do not hash to its "
                            "root (an entry edited, deleted or reordered)")
        if head.stored.verdict:
            failures.append(f"{where}: the server rejected it: {head.stored.verdict}")
    return failures + split_view_failures(client, heads)


def split_view_failures(client: int, heads: list[VerifiedHead]) -> list[str]:
    """A line per signed head that no single ledger can share with an earlier one: its stored
    consistency proof fails against the head it was checked against, or two heads of one size
    have different roots."""
    failures = []
    for index, later in enumerate(heads):
        earlier_heads = heads[:index]
        same_size = [h for h in earlier_heads if h.checkpoint.size == later.checkpoint.size
                     and h.checkpoint.root != later.checkpoint.root]
        base = [h for h in earlier_heads if not h.stored.verdict
                and h.checkpoint.size == later.stored.previous_size]
        forked = same_size[-1:] or [
            h for h in base[-1:] if later.stored.proof is not None and not verify_consistency(
                h.checkpoint.size, later.checkpoint.size, h.checkpoint.root,
                later.checkpoint.root, later.stored.proof)]
        for h in forked:
            failures.append(f"client {client}: split view: the tree heads of round "
                            f"{h.stored.round} (size {h.checkpoint.size}) and round "
                            f"{later.stored.round} (size {later.checkpoint.size}) are not "
                            "consistent: no one ledger has both")
    return failures
