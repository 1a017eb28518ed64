"""FedAvg on ciphertexts: the server adds CKKS-encrypted n_i·w_i it cannot read."""

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from emofl.common.crypto.ckks import CkksError
from emofl.common.crypto.encrypted_update import EncryptedUpdate, check_updates, sum_encrypted
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.common.protocol.messages import ARRAYS
from emofl.server.federated.keys import ServerKeys

EVALUATING_CLIENTS = 1


class CkksFedAvg(FedAvg):
    """FedAvg whose average happens under CKKS encryption.

    Each training client sends signed ciphertexts of n_i·w_i (see
    `emofl.common.crypto.encrypted_update`). `screen_updates` checks every update on its own
    (fingerprint, length, chunk count and sizes, HMAC tag, ciphertext shape and scale) and says
    why each bad one is rejected; `aggregate_train` adds the updates homomorphically and passes
    on the encrypted Σ n_i·w_i with Σ n_i in place of the global model. Clients decrypt and
    divide; the server never sees an update nor the aggregate in plaintext, and it holds no
    secret key (`ServerKeys` refuses one). Since the server cannot read the model, one client
    evaluates it each round.

    Parameters
    ----------
    keys : ServerKeys
        The public CKKS context, its fingerprint and the integrity key.
    expected_length : int
        Number of values in a flattened model update.
    **fedavg_kwargs
        Passed to `flwr.serverapp.strategy.FedAvg`.
    """

    def __init__(self, keys: ServerKeys, expected_length: int, **fedavg_kwargs) -> None:
        super().__init__(**fedavg_kwargs)
        self.keys = keys
        self.expected_length = expected_length

    def screen_updates(self, replies: list[Message]) -> list[str]:
        """Per reply, the reason its update cannot join the sum ("" when it can)."""
        updates: list[EncryptedUpdate | None] = []
        reasons: list[str] = []
        for reply in replies:
            try:
                updates.append(from_arrays(reply.content[ARRAYS]))
                reasons.append("")
            except CkksError as err:
                updates.append(None)
                reasons.append(str(err))
        readable = [u for u in updates if u is not None]
        checked = iter(check_updates(self.keys.public_context, readable, self.keys.fingerprint,
                                     self.expected_length, self.keys.integrity_key))
        return [reason or next(checked) if update is not None else reason
                for update, reason in zip(updates, reasons, strict=True)]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        updates = [from_arrays(reply.content[ARRAYS]) for reply in replies]
        chunks, total, _ = sum_encrypted(self.keys.public_context, updates,
                                         self.keys.fingerprint, self.expected_length,
                                         self.keys.integrity_key)
        aggregate = EncryptedUpdate(chunks=chunks, length=self.expected_length,
                                    num_examples=total, fingerprint=self.keys.fingerprint)
        return to_arrays(aggregate), None

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        """Ask `EVALUATING_CLIENTS` key holders to decrypt and evaluate the global model."""
        messages = list(super().configure_evaluate(server_round, arrays, config, grid))
        return messages[:EVALUATING_CLIENTS]
