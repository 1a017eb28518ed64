"""The encrypted-head gRPC service: holds a frame model's linear head and evaluates it on
CKKS-encrypted features, for devices that keep their faces and their secret keys.

Every request is checked before any ciphertext arithmetic: message sizes (by gRPC and again
per item), SEAL's own validity checks, the advertised parameters, the batch layout, the
session. A bad request gets a gRPC status naming what was wrong (INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED) and nothing else changes; an unexpected failure is logged and answered
INTERNAL, and the service keeps serving.
"""

import functools
import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np
import tenseal.sealapi as seal

from emofl.common.crypto import seal_bytes
from emofl.common.crypto.head_ckks import galois_elements, seal_context
from emofl.common.crypto.packed_head import all_rotation_steps
from emofl.common.data.classes import CLASSES
from emofl.common.errors import SettingsError
from emofl.common.model.frame_store import backbone_sha256, load_model
from emofl.common.protocol import head_service_pb2 as pb
from emofl.common.protocol import head_service_pb2_grpc as pb_grpc
from emofl.server.head.evaluator import HeadRequestError, PackedHeadEvaluator
from emofl.server.head.listening import NO_PORT_SHARING, bind, check_port, server_credentials
from emofl.server.head.sessions import SessionLimitError, SessionStore, UnknownSessionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds that keep one client from exhausting the service.

    max_faces_per_request: faces in one Classify call (64 → 16 ciphertexts of ~120 kB).
        A session also runs one request at a time, so one device cannot hold every worker.
    max_sessions: sessions held at once; each holds ~3.3 MB of Galois keys.
    idle_timeout_s: a session unused this long is forgotten.
    max_ciphertext_bytes / max_key_bytes: per item, checked before SEAL parses it.
    max_message_bytes: gRPC's bound on a whole request; larger ones get RESOURCE_EXHAUSTED.
    """

    max_faces_per_request: int = 64
    max_sessions: int = 32
    idle_timeout_s: float = 600.0
    max_ciphertext_bytes: int = 512 * 1024
    max_key_bytes: int = 12 * 1024 * 1024
    max_message_bytes: int = 16 * 1024 * 1024


def _answered(method):
    """Turns a handler's exceptions into gRPC statuses, so no request takes the service down."""

    @functools.wraps(method)
    def handler(self, request, context: grpc.ServicerContext):
        try:
            return method(self, request, context)
        except UnknownSessionError:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown or expired session; open a new one")
        except SessionLimitError as err:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
        except ValueError as err:  # SealFormatError and HeadRequestError are ValueErrors
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except Exception:
            log.exception("encrypted-head request failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; the request was dropped")

    return handler


class EncryptedHeadService(pb_grpc.EncryptedHeadServicer):
    """Describe / OpenSession / Classify / CloseSession over one `PackedHeadEvaluator`."""

    def __init__(self, evaluator: PackedHeadEvaluator, backbone_digest: str,
                 limits: ServiceLimits = ServiceLimits()) -> None:
        self.evaluator = evaluator
        self.backbone_digest = backbone_digest
        self.limits = limits
        self.sessions = SessionStore(limits.max_sessions, limits.idle_timeout_s)
        steps = all_rotation_steps(evaluator.num_classes, evaluator.params.slots)
        self._required_keys = dict(zip(steps, galois_elements(steps, evaluator.params),
                                       strict=True))

    @_answered
    def Describe(self, request, context) -> pb.HeadDescription:  # noqa: N802 (gRPC name)
        params = self.evaluator.params
        return pb.HeadDescription(
            feature_dim=self.evaluator.feature_dim, classes=list(CLASSES),
            poly_modulus_degree=params.poly_modulus_degree,
            coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes), scale_bits=params.scale_bits,
            max_faces_per_request=self.limits.max_faces_per_request,
            backbone_sha256=self.backbone_digest,
            session_idle_timeout_s=int(self.limits.idle_timeout_s),
        )

    @_answered
    def OpenSession(self, request, context) -> pb.OpenSessionReply:  # noqa: N802
        parms = seal_bytes.load_parameters(request.encryption_parameters)
        if seal_context(parms).key_parms_id() != self.evaluator.context.key_parms_id():
            raise HeadRequestError("encryption parameters differ from the ones Describe "
                                   "advertises")
        keys = seal_bytes.load(seal.GaloisKeys, self.evaluator.context, request.galois_keys,
                               self.limits.max_key_bytes, "galois_keys")
        missing = [step for step, elt in self._required_keys.items() if not keys.has_key(elt)]
        if missing:
            raise HeadRequestError(f"galois_keys lack the rotations by {missing} slots")
        return pb.OpenSessionReply(session_id=self.sessions.open(keys))

    @_answered
    def Classify(self, request, context) -> pb.ClassifyReply:  # noqa: N802
        session = self.sessions.get(request.session_id)
        faces = request.num_faces
        if not 1 <= faces <= self.limits.max_faces_per_request:
            raise HeadRequestError(f"num_faces must be 1..{self.limits.max_faces_per_request}, "
                                   f"got {faces}")
        expected = self.evaluator.layout(faces).chunks
        if len(request.packed_features) != expected:
            raise HeadRequestError(f"{faces} faces need {expected} ciphertexts, "
                                   f"got {len(request.packed_features)}")
        ciphertexts = [
            seal_bytes.load(seal.Ciphertext, self.evaluator.context, blob,
                            self.limits.max_ciphertext_bytes, f"packed_features[{i}]")
            for i, blob in enumerate(request.packed_features)
        ]
        if not session.lock.acquire(blocking=False):
            raise SessionLimitError("this session already has a request in flight; send one "
                                    "batch at a time")
        try:
            result = self.evaluator.evaluate(ciphertexts, faces, session.galois_keys)
        finally:
            session.lock.release()
        return pb.ClassifyReply(logits=seal_bytes.to_bytes(result))

    @_answered
    def CloseSession(self, request, context) -> pb.CloseSessionReply:  # noqa: N802
        self.sessions.close(request.session_id)
        return pb.CloseSessionReply()


def start_head_server(model_path: str | None = None, host: str = "127.0.0.1", port: int = 0,
                      tls_cert: str | None = None, tls_key: str | None = None,
                      limits: ServiceLimits = ServiceLimits(),
                      ) -> tuple[grpc.Server, int, EncryptedHeadService]:
    """Load the model's head, start serving it, and return (server, bound port, service).

    Port 0 picks a free port; a port in use or out of range is refused (`listening`). TLS needs
    both `tls_cert` and `tls_key` (PEM files). Everything is checked before the model loads.
    """
    if bool(tls_cert) != bool(tls_key):
        raise SettingsError("TLS needs both --tls-cert and --tls-key")
    check_port(port)
    credentials = server_credentials(tls_cert, tls_key) if tls_cert else None
    model, _ = load_model(model_path)
    evaluator = PackedHeadEvaluator(model.head.weight.detach().numpy().astype(np.float64),
                                    model.head.bias.detach().numpy().astype(np.float64))
    service = EncryptedHeadService(evaluator, backbone_sha256(model), limits)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", limits.max_message_bytes),
                 ("grpc.max_send_message_length", limits.max_message_bytes),
                 *NO_PORT_SHARING],
    )
    pb_grpc.add_EncryptedHeadServicer_to_server(service, server)
    bound = bind(server, host, port, credentials)
    server.start()
    return server, bound, service
