"""FedAvg on ciphertexts: the server adds CKKS-encrypted n_i·w_i it cannot read."""

from logging import WARNING

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.common import log

from emofl.common.crypto.ckks import CkksError, EncryptedUpdate, sum_encrypted
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.server.federated.keys import ServerKeys
from emofl.server.federated.privacy_fedavg import PrivacyFedAvg


class CkksFedAvg(PrivacyFedAvg):
    """PrivacyFedAvg whose average happens under CKKS encryption.

    Each training client sends signed ciphertexts of n_i·w_i (see `emofl.common.crypto.ckks`). The
    strategy checks every update on its own (fingerprint, length, chunk count and sizes, HMAC
    tag, ciphertext shape and scale), rejects the bad ones with a logged reason, adds the rest
    homomorphically and passes on the encrypted Σ n_i·w_i with Σ n_i in place of the global
    model. Clients decrypt and divide; the server never sees an update nor the aggregate in
    plaintext, and it holds no secret key (`ServerKeys` refuses one).

    Parameters
    ----------
    keys : ServerKeys
        The public CKKS context, its fingerprint and the integrity key.
    expected_length : int
        Number of values in a flattened model update.
    **kwargs
        Passed to `PrivacyFedAvg`.
    """

    def __init__(self, keys: ServerKeys, expected_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keys = keys
        self.expected_length = expected_length

    def combine(self, server_round: int, trained: list[tuple[dict, Message]]
                ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        updates, owners = [], []
        for report, reply in trained:
            try:
                updates.append(from_arrays(reply.content["arrays"]))
                owners.append(report)
            except CkksError as err:
                self._reject(report, str(err))
        try:
            chunks, total, rejected = sum_encrypted(
                self.keys.public_context, updates, self.keys.fingerprint, self.expected_length,
                self.keys.integrity_key)
        except CkksError as err:
            for report in owners:
                report["rejected"] = report["rejected"] or str(err)
            log(WARNING, "round %d: no acceptable encrypted update: %s",
                self.round_offset + server_round, err)
            return None, None
        for index, reason in rejected:
            self._reject(owners[index], reason)
        aggregate = EncryptedUpdate(chunks=chunks, length=self.expected_length,
                                    num_examples=total, fingerprint=self.keys.fingerprint)
        return to_arrays(aggregate), None

    def _reject(self, report: dict, reason: str) -> None:
        report["rejected"] = reason
        log(WARNING, "rejected the update of client %d: %s", report["id"], reason)
