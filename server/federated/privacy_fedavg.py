"""FedAvg that keeps every client's privacy report and leaves refusals out of the average."""

import json
import math
from collections.abc import Iterable
from logging import WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

PRIVACY_KEY = "privacy"


def client_report(content) -> dict:
    """One client's entry for metrics.json from its train reply."""
    metrics, privacy = content["metrics"], content[PRIVACY_KEY]
    epsilon = float(metrics["epsilon"])
    return {
        "id": int(metrics["client-id"]),
        "num_examples": int(metrics["num-examples"]),
        "epsilon": epsilon if math.isfinite(epsilon) else None,
        "delta": float(metrics["delta"]),
        "noise_multiplier": float(metrics["noise-multiplier"]),
        "sample_rate": float(metrics["sample-rate"]),
        "steps": int(metrics["steps"]),
        "max_grad_norm": float(metrics["max-grad-norm"]),
        "accountant": str(privacy["accountant"]),
        "train_loss": float(metrics["train-loss"]),
        "train_seconds": float(metrics["train-seconds"]),
        "refused": str(privacy["refusal"]),
        "bytes_up": int(metrics["bytes-up"]),
        "rejected": "",
    }


class PrivacyFedAvg(FedAvg):
    """FedAvg (weighted by num-examples) over the clients that trained in a round.

    Each round it records, per replying client, the report built by `client_report` and the
    client's full accountant history, so the server's checkpoint can carry every client's
    privacy state. Clients that refused the round (budget exhausted) are recorded but not
    averaged. `combine` does the averaging of the others; subclasses replace it (CKKS).

    Parameters
    ----------
    round_offset : int
        Rounds already completed before this start (when resuming); the round number sent to
        clients as "global-round" is `round_offset + server_round`.
    ledgers : dict[int, dict]
        Accountant state per client id, as last reported; updated in place.
    **fedavg_kwargs
        Passed to `flwr.serverapp.strategy.FedAvg`.
    """

    def __init__(self, round_offset: int = 0, ledgers: dict[int, dict] | None = None,
                 **fedavg_kwargs) -> None:
        super().__init__(**fedavg_kwargs)
        self.round_offset = round_offset
        self.ledgers = ledgers if ledgers is not None else {}
        self.last_reports: list[dict] = []
        self.last_evaluation: MetricRecord | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        config["global-round"] = self.round_offset + server_round
        return super().configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        config["global-round"] = self.round_offset + server_round
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        trained: list[tuple[dict, Message]] = []
        self.last_reports = []
        for reply in replies:
            if reply.has_error():
                log(WARNING, "client node %s failed: %s", reply.metadata.src_node_id,
                    reply.error.reason)
                continue
            try:
                report = client_report(reply.content)
                ledger = json.loads(reply.content[PRIVACY_KEY]["ledger"])
            except (KeyError, TypeError, ValueError) as err:
                log(WARNING, "ignored a malformed reply from node %s: %s: %s",
                    reply.metadata.src_node_id, type(err).__name__, err)
                continue
            self.last_reports.append(report)
            self.ledgers[report["id"]] = ledger
            if report["refused"]:
                log(WARNING, "client %d refused round %d: %s", report["id"],
                    self.round_offset + server_round, report["refused"])
            else:
                trained.append((report, reply))
        self.last_reports.sort(key=lambda r: r["id"])
        if not trained:
            return None, None
        return self.combine(server_round, trained)

    def combine(self, server_round: int, trained: list[tuple[dict, Message]]
                ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """FedAvg of the plaintext weights of the clients that trained."""
        return super().aggregate_train(server_round, [reply for _, reply in trained])

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]
                           ) -> MetricRecord | None:
        self.last_evaluation = super().aggregate_evaluate(server_round, replies)
        return self.last_evaluation
