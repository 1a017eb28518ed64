"""FedAvgM under CKKS: the key holders fold the server's optimizer step into their updates.

Flower's FedAvgM keeps a momentum vector m and steps w_t = w_{t-1} - η·m_t, where
m_t = β·m_{t-1} + (w_{t-1} - w̄_t) and w̄_t is the n-weighted mean of the devices' weights
(m_1 is the first pseudo-gradient, as if m_0 = 0). In CKKS mode the server cannot read w̄_t,
and a ciphertext times β or η needs a multiplicative level the aggregation context does not
have (`ckks.DEFAULT_PARAMS`). Both lines are linear in the devices' weights, so the step runs at
the key holders: each device decrypts the state [w_{t-1}, m_{t-1}] it was sent, computes its
share m_i = β·m_{t-1} + (w_{t-1} - w_i) and w'_i = w_{t-1} - η·m_i from its own new weights
w_i, and encrypts n_i·[w'_i, m_i]. The n-weighted mean of the shares is exactly [w_t, m_t], so
the server still only adds ciphertexts, and the momentum travels and is checkpointed encrypted
with the model. Without momentum (β = 0) the share is w'_i alone.
"""

from dataclasses import dataclass

import numpy as np

from emofl.common.crypto.ckks import CkksError
from emofl.common.protocol.run_settings import RunSettings


@dataclass(frozen=True)
class ServerOptimizer:
    """FedAvgM's server learning rate η and momentum β (Flower's `server_learning_rate` and
    `server_momentum`); η = 1, β = 0 is plain FedAvg."""

    learning_rate: float = 1.0
    momentum: float = 0.0

    @classmethod
    def of(cls, settings: RunSettings) -> "ServerOptimizer":
        return cls(settings.server_learning_rate, settings.server_momentum)

    @property
    def active(self) -> bool:
        """Whether the step differs from taking the mean (Flower's `server_opt`)."""
        return self.learning_rate != 1.0 or self.momentum != 0.0

    def state_length(self, model_length: int) -> int:
        """Values in the encrypted state: the model, and the momentum when there is one."""
        return 2 * model_length if self.momentum else model_length

    def share(self, previous: np.ndarray, momentum: np.ndarray | None,
              local: np.ndarray) -> np.ndarray:
        """A device's share of the next state, before weighting by n_i: w'_i, or [w'_i, m_i].

        `previous` is the global model the round started from, `momentum` the momentum it came
        with (None in the first round), `local` the device's weights after training.
        """
        step = previous - local  # this device's pseudo-gradient
        if self.momentum and momentum is not None:
            step = self.momentum * momentum + step
        weights = previous - self.learning_rate * step
        return np.concatenate([weights, step]) if self.momentum else weights


def split_state(vector: np.ndarray, model_length: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A decrypted state as (model, momentum or None); CkksError when it fits neither form."""
    if len(vector) == model_length:
        return vector, None
    if len(vector) == 2 * model_length:
        return vector[:model_length], vector[model_length:]
    raise CkksError(f"the encrypted state holds {len(vector)} values; the model has "
                    f"{model_length} (or twice that with server momentum)")
