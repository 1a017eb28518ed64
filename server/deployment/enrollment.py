"""`emofl enroll` and `emofl revoke`: admitting a device to the federation, and removing it.

Enrollment checks the request (public keys only, a consent), registers the node key with the
running SuperLink (Flower assigns the node id), records the device and its consent in the
registry, and writes the device's bundle. With `--keys KEYDIR` (from `emofl keys init`, on a
machine of the operator's choosing) the CKKS secret context is read from KEYDIR, sealed to the
device's X25519 key (bound to this server and node) and written into the bundle only; the
server folder receives the public context and nothing secret. The server verifies each
device's updates with the signing public key recorded here, so no key is shared with it.

Revocation unregisters the node from the SuperLink (a running node exits within seconds and the
same key cannot join again) and marks it revoked in the registry.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from emofl.common.crypto.ckks import context_fingerprint
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, SECRET_CONTEXT, read_key_file
from emofl.common.crypto.sealing import seal
from emofl.common.protocol.enrollment import (
    BUNDLE_FORMAT,
    EnrollmentBundle,
    EnrollmentError,
    EnrollmentRequest,
    b64,
    sealing_context,
    sealing_public_key,
)
from emofl.common.storage import atomic_io
from emofl.server.deployment import registry
from emofl.server.deployment.flower_cli import register_node, unregister_node
from emofl.server.deployment.server_folder import ServerFolder
from emofl.server.deployment.server_start import read_endpoint


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ckks_keys(folder: ServerFolder, key_dir: str | Path) -> tuple[bytes, str]:
    """(secret context, public fingerprint) from the operator's KEYDIR, after checking that its
    public context is the one this server already holds, or keeping it. The secret context
    stays opaque bytes here: it is only sealed, never loaded; the device checks that it matches
    the fingerprint."""
    secret = read_key_file(key_dir, SECRET_CONTEXT)
    public = read_key_file(key_dir, PUBLIC_CONTEXT)
    fingerprint = context_fingerprint(public)
    held = folder.keys / PUBLIC_CONTEXT
    if held.exists():
        if context_fingerprint(held.read_bytes()) != fingerprint:
            raise EnrollmentError(f"{key_dir} holds other CKKS keys than the public context in "
                                  f"{held}; every device of a federation shares one context")
    else:
        atomic_io.write_bytes(held, public)
    return secret, fingerprint


def enroll(folder: ServerFolder, request_path: str | Path, out: str | Path,
           key_dir: str | Path | None = None) -> dict:
    """Enroll the device whose request is at `request_path`; write its bundle to `out`.

    Args:
        folder: the server folder, whose server is running (`emofl server start`).
        request_path: the device's `request.json`.
        out: the bundle file to create (never overwritten).
        key_dir: the operator's CKKS key folder; without it the federation aggregates in plain.

    Returns:
        The node id, the client id and the bundle's path.
    """
    request = EnrollmentRequest.read(request_path)
    out = Path(out)
    if out.exists():
        raise EnrollmentError(f"{out} already exists; `emofl enroll` never overwrites")
    if (known := registry.find_by_node_key(folder.registry, request.node_public_key)):
        raise EnrollmentError(f"this device is already enrolled as node {known.node_id}")
    endpoint = read_endpoint(folder)
    sealed, fingerprint = {}, ""
    recipient = sealing_public_key(request.sealing_public_key)
    ckks = _ckks_keys(folder, key_dir) if key_dir else None
    node_id = register_node(folder, request.node_public_key)
    client_id = registry.next_client_id(folder.registry)
    registry.add_device(folder.registry, registry.DeviceRecord(
        node_id=node_id, client_id=client_id, device_name=request.device_name,
        node_public_key=request.node_public_key,
        sealing_public_key=request.sealing_public_key,
        signing_public_key=request.signing_public_key,
        consent=json.dumps(request.consent), enrolled_at=_now()))
    if ckks:
        secret, fingerprint = ckks
        sealed[SECRET_CONTEXT] = b64(seal(secret, recipient, sealing_context(
            folder.server_id, node_id, SECRET_CONTEXT)))
    consent = request.consent_record
    bundle = EnrollmentBundle(
        format=BUNDLE_FORMAT, server_id=folder.server_id, superlink=endpoint["fleet_address"],
        ca_certificate=folder.ca_cert.read_text(encoding="ascii"), node_id=node_id,
        client_id=client_id, node_public_key=request.node_public_key,
        run_settings={"epsilon": consent.epsilon, "delta": consent.delta,
                      "secure-agg": "ckks" if ckks else "none"},
        public_context_fingerprint=fingerprint, sealed_keys=sealed)
    atomic_io.write_json(out, bundle.to_dict())
    return {"node_id": node_id, "client_id": client_id, "bundle": str(out),
            "secure_agg": bundle.run_settings["secure-agg"]}


def revoke(folder: ServerFolder, node_id: int) -> dict:
    """Unregister `node_id` from the SuperLink and mark it revoked in the registry."""
    device = registry.get_device(folder.registry, node_id)
    if device.revoked_at is None:
        unregister_node(folder, node_id)
        registry.mark_revoked(folder.registry, node_id, _now())
    return {"node_id": node_id, "revoked_at": registry.get_device(folder.registry,
                                                                  node_id).revoked_at}
