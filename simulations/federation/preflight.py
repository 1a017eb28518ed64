"""Checks a simulation makes before Ray starts, so that a run that cannot work fails in one line
instead of in every client: the split, δ against the smallest client, the budget of one round,
and (CKKS) that the server's public context belongs to the clients' secret one."""

import logging
import warnings

from emofl.client.federated.dp_training import plan_round
from emofl.client.federated.keys import load_client_keys
from emofl.common.data.federated_data import public_split_of, training_indices
from emofl.common.data.partition import partition_indices
from emofl.common.errors import UserError
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.keys import load_server_keys

USUAL_DELTA = 1e-5


class PreflightError(UserError):
    """A setting or data set with which no federated round could succeed."""


def check_federation(settings: RunSettings) -> None:
    """Raise PreflightError when the run cannot work; warn about what weakens its guarantee."""
    dataset, train = training_indices(settings, settings.num_clients, public_split_of(settings))
    try:
        parts = partition_indices(dataset.labels[train], settings.num_clients,
                                  settings.alpha or None, settings.seed)
    except ValueError as err:
        raise PreflightError(f"cannot split the data among {settings.num_clients} clients: "
                             f"{err}") from None
    smallest = min(len(part) for part in parts)
    if settings.dp:
        _check_delta(settings.delta, smallest)
        for size in sorted({len(part) for part in parts}):
            try:
                with warnings.catch_warnings():  # Opacus warns before it gives up
                    warnings.simplefilter("ignore")
                    plan_round(settings, size)
            except ValueError as err:
                raise PreflightError(f"ε = {settings.epsilon:g} cannot pay for "
                                     f"{settings.rounds} round(s) of DP-SGD for a client with "
                                     f"{size} faces: {err}") from None
    if settings.encrypted:
        check_key_pair(settings.key_dir)


def _check_delta(delta: float, smallest: int) -> None:
    if delta >= 1 / smallest:
        raise PreflightError(f"δ = {delta:g} must be below 1/n = {1 / smallest:.3g}, n = "
                             f"{smallest} faces of the smallest client (δ ≥ 1/n allows "
                             "releasing a face outright)")
    if delta > USUAL_DELTA:
        logging.getLogger(__name__).warning(
            "δ = %g is above the usual %g: the guarantee is weaker than the ε suggests",
            delta, USUAL_DELTA)


def check_key_pair(key_dir: str) -> None:
    """The public context the server adds under must be the public half of the clients'
    secret context, or the server would reject every update while clients spend their ε."""
    client, server = load_client_keys(key_dir), load_server_keys(key_dir)
    if client.fingerprint != server.fingerprint:
        raise PreflightError(f"the public context in {key_dir} is not the public half of its "
                             "secret context; make the keys again with `emofl keys init`")
