"""FedAvg on ciphertexts: the server adds CKKS-encrypted n_i·w_i it cannot read, and only those
each device signed for this run and round."""

from collections.abc import Callable, Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from emofl.common.crypto.ckks import CkksError
from emofl.common.crypto.encrypted_update import (
    EncryptedUpdate,
    UpdateOrigin,
    check_updates,
    sum_encrypted,
)
from emofl.common.crypto.update_signature import signature_problem
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.common.protocol.messages import ARRAYS
from emofl.server.federated.keys import ServerKeys

EVALUATING_CLIENTS = 1
DeviceKeyLookup = Callable[[int, str, int], str]
"""(client id, key the update offers, global round) -> the client's verifier key, or ""."""


class CkksFedAvg(FedAvg):
    """FedAvg whose average happens under CKKS encryption.

    Each training client sends ciphertexts of n_i·w_i signed with its own device key (see
    `emofl.common.crypto.encrypted_update` and `update_signature`). `screen_updates` checks
    every update on its own — the signature under the key `device_key` gives for that client,
    over this run, this round and that client id (refusing a replay, another client's update
    and a forgery), one update per client, then fingerprint, length, chunk count and sizes,
    ciphertext shape and scale — and says why each bad one is rejected. `aggregate_train` adds
    only the updates the last screening accepted, homomorphically, and passes on the encrypted
    Σ n_i·w_i with Σ n_i in place of the global model. Clients decrypt and divide; the server
    never sees an update nor the aggregate in plaintext, and it holds no secret key
    (`ServerKeys` refuses one) nor any device's private key. Since the server cannot read the
    model, one client evaluates it each round.

    Parameters
    ----------
    keys : ServerKeys
        The public CKKS context and its fingerprint.
    expected_length : int
        Number of values in a flattened model update.
    run_id : int
        This run's Flower run id, which every update must be signed for.
    device_key : DeviceKeyLookup
        The key each client must sign with (`TreeHeadBook.device_key`: enrolled, or pinned).
    **fedavg_kwargs
        Passed to `flwr.serverapp.strategy.FedAvg`.
    """

    def __init__(self, keys: ServerKeys, expected_length: int, *, run_id: int,
                 device_key: DeviceKeyLookup, **fedavg_kwargs) -> None:
        super().__init__(**fedavg_kwargs)
        self.keys = keys
        self.expected_length = expected_length
        self.run_id = run_id
        self.device_key = device_key
        self._accepted: set[bytes] = set()

    def screen_updates(self, global_round: int, senders: list[int],
                       replies: list[Message]) -> list[str]:
        """Per reply (from client `senders[i]`), the reason its update cannot join this round's
        sum ("" when it can). Only the accepted ones can be summed by `aggregate_train` next."""
        reasons: list[str] = []
        signed: dict[int, tuple[int, EncryptedUpdate]] = {}  # client -> (reply index, update)
        for index, (client_id, reply) in enumerate(zip(senders, replies, strict=True)):
            try:
                update = from_arrays(reply.content[ARRAYS])
                reason = self._signature_problem(update, global_round, client_id)
            except CkksError as err:
                reason = str(err)
            if not reason and client_id in signed:
                reason = f"duplicate: client {client_id} already sent update {signed[client_id][0]}"
            if not reason:
                signed[client_id] = (index, update)
            reasons.append(reason)
        checked = check_updates(self.keys.public_context, [u for _, u in signed.values()],
                                self.keys.fingerprint, self.expected_length)
        for (index, _), reason in zip(signed.values(), checked, strict=True):
            reasons[index] = reason
        self._accepted = {u.signature.signature for index, u in signed.values()
                          if not reasons[index] and u.signature is not None}
        return reasons

    def _signature_problem(self, update: EncryptedUpdate, global_round: int,
                           client_id: int) -> str:
        offered = update.signature.signer if update.signature else ""
        key = self.device_key(client_id, offered, global_round)
        return signature_problem(update, UpdateOrigin(self.run_id, global_round, client_id), key)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The encrypted sum of the replies' updates that the last `screen_updates` accepted;
        CkksError when none of them was."""
        updates = [from_arrays(reply.content[ARRAYS]) for reply in replies]
        screened = [u for u in updates if u.signature and u.signature.signature in self._accepted]
        self._accepted = set()
        if not screened:
            raise CkksError(f"none of the {len(updates)} updates passed this round's screening")
        chunks, total, _ = sum_encrypted(self.keys.public_context, screened,
                                         self.keys.fingerprint, self.expected_length)
        aggregate = EncryptedUpdate(chunks=chunks, length=self.expected_length,
                                    num_examples=total, fingerprint=self.keys.fingerprint)
        return to_arrays(aggregate), None

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        """Ask `EVALUATING_CLIENTS` key holders to decrypt and evaluate the global model."""
        messages = list(super().configure_evaluate(server_round, arrays, config, grid))
        return messages[:EVALUATING_CLIENTS]
