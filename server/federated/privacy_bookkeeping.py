"""A strategy wrapper that keeps every device's privacy report and leaves refusals out.

Like Flower's `DifferentialPrivacyServerSideFixedClipping`, it adds one concern to another
strategy and delegates the rest: the wrapped strategy (FedAvg, or `CkksFedAvg` under secure
aggregation) aggregates; this wrapper parses each train reply into a `TrainReply`, records the
device's report, checks and stores its signed tree head when a `TreeHeadBook` is given (DP
runs: a device whose head or ledger fails is left out), keeps the events of its verified
ledger, screens the updates of the devices that trained when a screen is given (CKKS: the
device's signature for this run, round and client, then fingerprint and ciphertext checks),
passes only the accepted ones to the wrapped strategy,
and hands the round's reports to an observer (the run's recorder) as a value.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from logging import WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.privacy.signed_ledger import ledger_of, parse_export
from emofl.common.protocol.messages import GLOBAL_ROUND, ReplyError, TrainReply
from emofl.server.federated.tree_heads import TreeHeadBook

Screen = Callable[[int, list[int], list[Message]], list[str]]


@dataclass
class RoundReports:
    """What the devices said in one round: a report per device that replied well-formed (sorted
    by client id), the ledgers they sent, and one line per reply that could not be used."""

    round: int
    clients: list[dict] = field(default_factory=list)
    ledgers: dict[int, dict] = field(default_factory=dict)
    unusable: list[str] = field(default_factory=list)

    @property
    def aggregated(self) -> int:
        """Devices whose update went into the new global model."""
        return sum(1 for c in self.clients if not c["refused"] and not c["rejected"])


def client_report(reply: TrainReply) -> dict:
    """One device's entry for metrics.json."""
    return {"id": reply.client_id, "num_examples": reply.num_examples,
            "epsilon": reply.epsilon_or_none, "delta": reply.delta,
            "noise_multiplier": reply.noise_multiplier, "sample_rate": reply.sample_rate,
            "steps": reply.steps, "max_grad_norm": reply.max_grad_norm,
            "accountant": reply.accountant, "train_loss": reply.train_loss,
            "train_seconds": reply.train_seconds, "refused": reply.refusal,
            "bytes_up": reply.bytes_up, "rejected": ""}


def ledger_events(reply: TrainReply) -> dict:
    """The events of the device's ledger (`PrivacyLedger.state_dict()`), for the checkpoint
    and the model card; empty without DP."""
    if not reply.ledger:
        return PrivacyLedger(reply.accountant if reply.accountant != "none" else "rdp"
                             ).state_dict()
    return ledger_of(parse_export(reply.ledger)[1], reply.accountant).state_dict()


def parse_replies(replies: Iterable[Message], global_round: int,
                  tree_heads: TreeHeadBook | None = None
                  ) -> tuple[RoundReports, list[tuple[dict, Message]]]:
    """The round's reports, and (report, reply) of every device that trained.

    Failed and malformed replies are logged and listed in `unusable`; refusals are reported
    but not returned for aggregation; with `tree_heads`, a device whose tree head or ledger
    fails its checks is reported as rejected and not returned either.
    """
    reports = RoundReports(round=global_round)
    trained: list[tuple[dict, Message]] = []
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            reports.unusable.append(f"node {node} failed: {reply.error.reason}")
            continue
        try:
            parsed = TrainReply.from_content(reply.content)
        except ReplyError as err:
            reports.unusable.append(f"node {node} sent a malformed reply: {err}")
            continue
        report = client_report(parsed)
        reports.clients.append(report)
        if tree_heads is not None:
            report["rejected"] = tree_heads.receive(parsed.client_id, global_round,
                                                    parsed.tree_head, parsed.ledger,
                                                    parsed.epsilon)
        if report["rejected"]:
            log(WARNING, "rejected client %d in round %d: %s", parsed.client_id, global_round,
                report["rejected"])
            continue
        reports.ledgers[parsed.client_id] = ledger_events(parsed)
        if parsed.refusal:
            log(WARNING, "client %d refused round %d: %s", parsed.client_id, global_round,
                parsed.refusal)
        else:
            trained.append((report, reply))
    for line in reports.unusable:
        log(WARNING, "round %d: %s", global_round, line)
    reports.clients.sort(key=lambda r: r["id"])
    # In client order, not arrival order: floating-point sums depend on the order, and a
    # non-private run (or its resume) should aggregate to the same model every time.
    trained.sort(key=lambda pair: pair[0]["id"])
    return reports, trained


class PrivacyBookkeeping(Strategy):
    """Wraps a FedAvg-family strategy with per-device privacy bookkeeping.

    Parameters
    ----------
    strategy : Strategy
        The strategy that samples devices and aggregates the updates of those that trained.
    round_offset : int
        Rounds completed before this start (when resuming); the round number sent to devices
        as "global-round" is `round_offset + server_round`.
    on_round : Callable[[RoundReports], None]
        Called after each round's aggregation with that round's reports.
    on_evaluate : Callable[[int, MetricRecord | None], None]
        Called with the global round and the devices' aggregated evaluation, if any.
    screen : Screen | None
        Checks the trained devices' updates before aggregation, given the global round, the
        client id each reply came from and the replies; returns, per reply, the reason to
        reject it ("" to accept).
    tree_heads : TreeHeadBook | None
        Under DP, where every device's signed tree head is checked and stored.
    """

    def __init__(self, strategy: Strategy, *, round_offset: int,
                 on_round: Callable[[RoundReports], None],
                 on_evaluate: Callable[[int, MetricRecord | None], None],
                 screen: Screen | None = None,
                 tree_heads: TreeHeadBook | None = None) -> None:
        super().__init__()
        self.strategy = strategy
        self.round_offset = round_offset
        self.on_round = on_round
        self.on_evaluate = on_evaluate
        self.screen = screen
        self.tree_heads = tree_heads

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        config[GLOBAL_ROUND] = self.round_offset + server_round
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        config[GLOBAL_ROUND] = self.round_offset + server_round
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        reports, trained = parse_replies(replies, self.round_offset + server_round,
                                         self.tree_heads)
        if self.screen is not None and trained:
            trained = self._screened(self.round_offset + server_round, trained)
        result: tuple[ArrayRecord | None, MetricRecord | None] = (None, None)
        if trained:
            result = self.strategy.aggregate_train(server_round, [reply for _, reply in trained])
        if result[0] is None:  # nothing aggregated: no update counts as having joined
            for report, _ in trained:
                report["rejected"] = report["rejected"] or "no update was aggregated this round"
        self.on_round(reports)
        return result

    def _screened(self, global_round: int, trained: list[tuple[dict, Message]]
                  ) -> list[tuple[dict, Message]]:
        reasons = self.screen(global_round, [report["id"] for report, _ in trained],
                              [reply for _, reply in trained])
        for (report, _), reason in zip(trained, reasons, strict=True):
            if reason:
                report["rejected"] = reason
                log(WARNING, "rejected the update of client %d in round %d: %s", report["id"],
                    global_round, reason)
        return [pair for pair, reason in zip(trained, reasons, strict=True) if not reason]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]
                           ) -> MetricRecord | None:
        metrics = self.strategy.aggregate_evaluate(server_round, replies)
        self.on_evaluate(self.round_offset + server_round, metrics)
        return metrics
