"""What enrollment exchanges, defined once for the device and the operator.

- `EnrollmentRequest` (`DEV/request.json`, device → operator): the device's three public keys
  and its consent, nothing secret. The node key is an ECDSA P-384 key in OpenSSH format (what
  Flower's `--enable-supernode-auth` registers); the sealing key (X25519) receives sealed
  secrets; the signing key (Ed25519) signs what the device sends.
- `EnrollmentBundle` (operator → device): the CA certificate, the SuperLink's Fleet address, the
  node id Flower assigned, the client id the device reports and signs its ledger under, the
  budget it consented to, and the CKKS secret context sealed to the device's sealing key
  (`common/crypto/sealing.py`), bound to server id and node id.

Both parse strictly: a missing or extra field, a malformed key or a wrong format tag is an
`EnrollmentError` naming the field.
"""

import base64
import binascii
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from emofl.common.crypto.key_files import SECRET_CONTEXT
from emofl.common.errors import UserError

REQUEST_FORMAT = "emofl-enrollment-request/1"
BUNDLE_FORMAT = "emofl-enrollment-bundle/1"
SHARED_DATA = "differentially private model updates only; no faces, features or labels"
SEALED_FILES = (SECRET_CONTEXT,)
"""The CKKS key files a bundle may carry sealed: the secret context only. No key is shared for
update integrity: a device signs its updates with its own Ed25519 key."""


class EnrollmentError(UserError):
    """An enrollment request or bundle that is malformed or does not fit; one line saying why."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    """The bytes of base64 `text`; EnrollmentError naming `what` when it is not base64."""
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise EnrollmentError(f"{what} is not base64") from None


def node_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A Flower node key from its OpenSSH text: EC on NIST P-384 (or another NIST curve)."""
    try:
        key = load_ssh_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise EnrollmentError("node_public_key is not an OpenSSH public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in (
            "secp256r1", "secp384r1", "secp521r1"):
        raise EnrollmentError("node_public_key must be an ECDSA key on a NIST curve")
    return key


def sealing_public_key(text: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(unb64(text, "sealing_public_key"))
    except ValueError as err:
        raise EnrollmentError(f"sealing_public_key is not an X25519 key ({err})") from None


def signing_public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(unb64(text, "signing_public_key"))
    except ValueError as err:
        raise EnrollmentError(f"signing_public_key is not an Ed25519 key ({err})") from None


def _fields_of(cls: type, data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise EnrollmentError(f"{what} is not a JSON object")
    names = {f.name for f in fields(cls)}
    missing, extra = names - data.keys(), data.keys() - names
    if missing or extra:
        problem = f"lacks {sorted(missing)}" if missing else f"has unknown fields {sorted(extra)}"
        raise EnrollmentError(f"{what} {problem}")
    return {name: data[name] for name in names}


def read_json_file(path: str | Path, what: str) -> Any:
    """The JSON in `path`; EnrollmentError naming it when it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise EnrollmentError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EnrollmentError(f"{path} is not a JSON {what} ({err.__class__.__name__})") from None


@dataclass(frozen=True)
class Consent:
    """What the device agrees to share and the privacy budget it allows over the federation."""

    shares: str
    epsilon: float
    delta: float
    given_at: str

    def __post_init__(self) -> None:
        if not isinstance(self.epsilon, (int, float)) or not self.epsilon > 0:
            raise EnrollmentError(f"consent epsilon must be positive, got {self.epsilon!r}")
        if not isinstance(self.delta, (int, float)) or not 0 < self.delta < 1:
            raise EnrollmentError(f"consent delta must be in (0, 1), got {self.delta!r}")


@dataclass(frozen=True)
class EnrollmentRequest:
    """A device's request to join: public keys and consent only."""

    format: str
    device_name: str
    node_public_key: str
    sealing_public_key: str
    signing_public_key: str
    consent: dict

    def __post_init__(self) -> None:
        if self.format != REQUEST_FORMAT:
            raise EnrollmentError(f"not an enrollment request (format {self.format!r})")
        node_public_key(self.node_public_key)
        sealing_public_key(self.sealing_public_key)
        signing_public_key(self.signing_public_key)
        Consent(**_fields_of(Consent, self.consent, "the request's consent"))

    @property
    def consent_record(self) -> Consent:
        return Consent(**self.consent)

    @classmethod
    def from_dict(cls, data: Any) -> "EnrollmentRequest":
        return cls(**_fields_of(cls, data, "the enrollment request"))

    @classmethod
    def read(cls, path: str | Path) -> "EnrollmentRequest":
        return cls.from_dict(read_json_file(path, "enrollment request"))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EnrollmentBundle:
    """What an enrolled device needs to join: where, whom to trust, who it is, what it agreed."""

    format: str
    server_id: str
    superlink: str
    ca_certificate: str
    node_id: int
    client_id: int
    node_public_key: str
    run_settings: dict
    public_context_fingerprint: str
    sealed_keys: dict

    def __post_init__(self) -> None:
        if self.format != BUNDLE_FORMAT:
            raise EnrollmentError(f"not an enrollment bundle (format {self.format!r})")
        for name in ("node_id", "client_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EnrollmentError(f"the bundle's {name} is not a non-negative integer")
        if not isinstance(self.sealed_keys, dict) or set(self.sealed_keys) - set(SEALED_FILES):
            raise EnrollmentError(f"the bundle's sealed_keys may only hold {SEALED_FILES}")
        node_public_key(self.node_public_key)

    @classmethod
    def read(cls, path: str | Path) -> "EnrollmentBundle":
        return cls(**_fields_of(cls, read_json_file(path, "enrollment bundle"),
                                "the enrollment bundle"))

    def to_dict(self) -> dict:
        return asdict(self)


def sealing_context(server_id: str, node_id: int, name: str) -> bytes:
    """The associated data a bundle's sealed key file is bound to: the server, the node, the
    file. A sealed key copied into another server's or node's bundle does not open."""
    return f"emofl bundle\nserver {server_id}\nnode {node_id}\nfile {name}".encode()
