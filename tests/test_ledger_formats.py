"""The formats a signed ledger is made of, checked against other implementations' vectors: the
RFC 6962/9162 Merkle tree (Certificate Transparency's vectors, pymerkle as an oracle) and the
C2SP signed note (the Go reference implementation's example), plus entry bytes."""

import base64
import dataclasses
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree

from emofl.common.privacy.checkpoint_note import (
    Checkpoint,
    NoteError,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)
from emofl.common.privacy.ledger_entry import GENESIS, LedgerEntry
from emofl.common.privacy.merkle import (
    consistency_proof,
    leaf_hash,
    root_of,
    verify_consistency,
)
from emofl.common.privacy.signing import Ed25519Signer

CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                        "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
CT_CONSISTENCY = {  # (first, second): proof, from Certificate Transparency's test data
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}
LEAVES = [leaf_hash(d) for d in CT_LEAVES]


def test_roots_are_rfc_6962s_for_every_size():
    assert [root_of(LEAVES[:n]).hex() for n in range(9)] == CT_ROOTS


def test_roots_agree_with_pymerkle_on_random_trees():
    data = [os.urandom(1 + i % 7) for i in range(37)]
    oracle = InmemoryTree(algorithm="sha256")
    for n, item in enumerate(data, start=1):
        oracle.append_entry(item)
        assert root_of([leaf_hash(d) for d in data[:n]]) == oracle.get_root(n)


def test_consistency_proofs_match_the_vectors_and_verify():
    for (first, second), proof in CT_CONSISTENCY.items():
        made = consistency_proof(LEAVES[:second], first)
        assert [h.hex() for h in made] == proof
        assert verify_consistency(first, second, root_of(LEAVES[:first]),
                                  root_of(LEAVES[:second]), made)


def test_every_proof_verifies_and_no_mangled_one_does():
    leaves = [leaf_hash(bytes([i])) for i in range(20)]
    roots = [root_of(leaves[:n]) for n in range(21)]
    for second in range(21):
        for first in range(second + 1):
            proof = consistency_proof(leaves[:second], first)
            assert verify_consistency(first, second, roots[first], roots[second], proof)
            if not proof:
                continue
            flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert not verify_consistency(first, second, roots[first], roots[second], flipped)
            assert not verify_consistency(first, second, roots[first], roots[second], proof[:-1])
            if first:  # a tree that differs in one old leaf is not an extension
                forked = [leaf_hash(b"forged"), *leaves[1:second]]
                assert not verify_consistency(first, second, roots[first], root_of(forked),
                                              consistency_proof(forked, first))


GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
                     "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def _go_signer() -> Ed25519Signer:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]  # PRIVATE+KEY+name+id+key
    return Ed25519Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_signed_notes_are_byte_for_byte_the_go_reference_implementations():
    signer = _go_signer()
    assert verifier_key(signer.name, signer.public_key) == GO_VKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT
    assert parse_verifier_key(GO_VKEY) == ("PeterNeumann", signer.public_key)


@pytest.mark.parametrize("note", [GO_NOTE.replace("problem,", "problem;"),
                                  GO_NOTE.replace("x08go", "x08gp"), GO_TEXT])
def test_an_altered_or_unsigned_note_does_not_open(note):
    with pytest.raises(NoteError):
        open_note(note, GO_VKEY)


def test_a_note_signed_by_another_key_of_the_same_name_does_not_open():
    other = Ed25519Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no valid signature"):
        open_note(sign_note(GO_TEXT, other), GO_VKEY)


def test_a_checkpoint_round_trips_with_its_claim_exactly():
    head = Checkpoint("emofl/privacy-ledger/client-3", 5, root_of(LEAVES[:5]),
                      7.931234567891234, 1e-5)
    lines = head.text().split("\n")
    assert lines[:3] == ["emofl/privacy-ledger/client-3", "5",
                         base64.b64encode(root_of(LEAVES[:5])).decode()]
    assert Checkpoint.parse(head.text()) == head


def test_entry_bytes_are_canonical_and_cover_every_field():
    entry = LedgerEntry(client=1, seq=0, round=1, noise_multiplier=1, sample_rate=0.1, steps=3,
                        max_grad_norm=1.0, delta=1e-5, sampler="poisson", accountant="rdp",
                        recorded_at=1.5, prev_hash=GENESIS)
    assert entry.noise_multiplier == 1.0 and isinstance(entry.noise_multiplier, float)
    assert LedgerEntry.from_dict(dataclasses.asdict(entry)).body() == entry.body()
    for field in dataclasses.fields(entry):
        value = getattr(entry, field.name)
        changed = value + 1 if isinstance(value, (int, float)) else value + "x"
        assert dataclasses.replace(entry, **{field.name: changed}).body() != entry.body()
