"""The device's connection to an encrypted-head service: it sends CKKS-encrypted backbone
features and gets back encrypted logits that only it can decrypt.

One `EncryptedHeadClient` is one session: on opening it checks that the service's head fits
the local backbone, makes fresh keys and uploads the public part once; `logits` then costs
one round trip per batch of up to `max_faces_per_request` faces.
"""

import grpc
import numpy as np
from cryptography import x509

from emofl.client.inference.head_encryption import DeviceHeadKeys
from emofl.common.crypto.head_ckks import HeadCkksParams
from emofl.common.crypto.packed_head import PackedLayout
from emofl.common.data.classes import CLASSES
from emofl.common.errors import SettingsError, UserError
from emofl.common.protocol import head_service_pb2 as pb
from emofl.common.protocol import head_service_pb2_grpc as pb_grpc
from emofl.common.storage.input_files import check_input_file

# Generous bounds for one message: a 64-face request is ~2 MB, the key upload ~3.3 MB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class HeadServiceError(UserError, ConnectionError):
    """The service could not be reached, or refused a request; the message says which. A
    ConnectionError too, so callers need not import this module to recognise it."""


def _trusted_certificates(tls_ca: str) -> bytes:
    """The PEM certificates in `tls_ca`; SettingsError naming the file when it is not a
    regular file (reading a FIFO would block) or holds no PEM certificate."""
    pem = check_input_file(tls_ca, "--tls-ca", SettingsError).read_bytes()
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise SettingsError(f"--tls-ca {tls_ca} is not a PEM certificate") from None
    return pem


def _channel(address: str, tls_ca: str | None) -> grpc.Channel:
    options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    if tls_ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=_trusted_certificates(tls_ca))
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


class EncryptedHeadClient:
    """A session with an encrypted-head service at `address` (host:port).

    `tls_ca` is the PEM certificate (or CA) to trust; without it the channel is plaintext,
    which still hides faces and features (they are encrypted) but not who talks to whom.
    """

    def __init__(self, address: str, backbone_digest: str, tls_ca: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._channel = _channel(address, tls_ca)
        self._stub = pb_grpc.EncryptedHeadStub(self._channel)
        self.bytes_sent = 0
        self.bytes_received = 0
        try:
            self._open_session(backbone_digest)
        except BaseException:
            self._channel.close()
            raise

    def _open_session(self, backbone_digest: str) -> None:
        """Check the head fits this device, make the session's keys, upload the public part."""
        self.description = self._call(self._stub.Describe, pb.DescribeRequest())
        self._check_description(backbone_digest)
        params = HeadCkksParams(self.description.poly_modulus_degree,
                                tuple(self.description.coeff_mod_bit_sizes),
                                self.description.scale_bits)
        self.keys = DeviceHeadKeys(len(self.description.classes), params)
        parameters, galois_keys = self.keys.public_material()
        self.upload_bytes = len(parameters) + len(galois_keys)
        reply = self._call(self._stub.OpenSession, pb.OpenSessionRequest(
            encryption_parameters=parameters, galois_keys=galois_keys))
        self.session_id = reply.session_id

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as err:
            raise HeadServiceError(
                f"encrypted-head service at {self.address}: {err.code().name}: {err.details()}"
            ) from None

    def _check_description(self, backbone_digest: str) -> None:
        if tuple(self.description.classes) != CLASSES:
            raise HeadServiceError(f"the service at {self.address} classifies "
                                   f"{list(self.description.classes)}, not {list(CLASSES)}")
        if self.description.backbone_sha256 != backbone_digest:
            raise HeadServiceError(f"the service at {self.address} serves a head for another "
                                   "backbone; run with the model it serves (--model)")

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits (F, K) of backbone features (F, d), computed by the service on ciphertext."""
        limit = self.description.max_faces_per_request
        parts = [self._batch_logits(features[i:i + limit])
                 for i in range(0, len(features), limit)]
        return np.concatenate(parts) if parts else np.zeros((0, len(CLASSES)))

    def _batch_logits(self, features: np.ndarray) -> np.ndarray:
        layout = PackedLayout(len(features), self.description.feature_dim,
                              len(self.description.classes), self.keys.params.slots)
        blobs = self.keys.encrypt_features(features.astype(np.float64), layout)
        reply = self._call(self._stub.Classify, pb.ClassifyRequest(
            session_id=self.session_id, num_faces=len(features), packed_features=blobs))
        self.bytes_sent += sum(map(len, blobs))
        self.bytes_received += len(reply.logits)
        return self.keys.decrypt_logits(reply.logits, layout)

    def close(self) -> None:
        """End the session on the service (best effort) and close the channel."""
        try:
            self._stub.CloseSession(pb.CloseSessionRequest(session_id=self.session_id),
                                    timeout=self.timeout_s)
        except grpc.RpcError:
            pass  # the session expires on the service anyway
        self._channel.close()

    def __enter__(self) -> "EncryptedHeadClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
