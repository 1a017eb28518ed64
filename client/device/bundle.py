"""Installing an enrollment bundle on the device it was made for.

`install_bundle` refuses a bundle for another device (its node key is not this device's), for
another server than the one this device already joined, or whose CA certificate is not a valid
CA now; it opens the sealed CKKS keys with the device's X25519 key (a tampered or misbound
envelope does not open), checks that the secret context is the one the bundle's fingerprint
names, and keeps the bundle as `DEV/bundle.json` and the opened keys in `DEV/ckks/` (0600),
where the device's ClientApp reads them.
"""

import datetime
from pathlib import Path

from cryptography import x509

from emofl.client.device.device_folder import BUNDLE, read_consent
from emofl.client.device.keys import load_sealing_key, node_public_key_text
from emofl.common.crypto.ckks import context_fingerprint, public_context_bytes
from emofl.common.crypto.key_files import SECRET_CONTEXT
from emofl.common.crypto.sealing import open_sealed
from emofl.common.protocol.enrollment import (
    EnrollmentBundle,
    EnrollmentError,
    sealing_context,
    unb64,
)
from emofl.common.storage import atomic_io

CKKS_DIR = "ckks"
CA_FILE = "ca.pem"


def ckks_dir(device_dir: str | Path) -> Path:
    return Path(device_dir) / CKKS_DIR


def check_ca(pem: str) -> None:
    """EnrollmentError unless `pem` is one CA certificate valid now."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (ValueError, x509.ExtensionNotFound, UnicodeEncodeError):
        raise EnrollmentError("the bundle's ca_certificate is not a CA certificate") from None
    now = datetime.datetime.now(datetime.UTC)
    if not is_ca:
        raise EnrollmentError("the bundle's ca_certificate is not a CA certificate")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EnrollmentError(f"the bundle's CA certificate is not valid now (valid "
                              f"{cert.not_valid_before_utc:%Y-%m-%d} to "
                              f"{cert.not_valid_after_utc:%Y-%m-%d}); ask the operator for a "
                              "new bundle")


def _open_keys(device_dir: Path, bundle: EnrollmentBundle) -> dict[str, bytes]:
    key = load_sealing_key(device_dir)
    opened = {name: open_sealed(unb64(text, f"sealed_keys.{name}"), key,
                                sealing_context(bundle.server_id, bundle.node_id, name))
              for name, text in bundle.sealed_keys.items()}
    if SECRET_CONTEXT in opened:
        public = public_context_bytes(opened[SECRET_CONTEXT])
        if context_fingerprint(public) != bundle.public_context_fingerprint:
            raise EnrollmentError("the bundle's secret context is not the one its fingerprint "
                                  "names")
    return opened


def install_bundle(device_dir: str | Path, bundle_path: str | Path) -> EnrollmentBundle:
    """Check the bundle at `bundle_path` against this device, open its sealed keys, keep it."""
    dev = Path(device_dir)
    read_consent(dev)
    bundle = EnrollmentBundle.read(bundle_path)
    if bundle.node_public_key != node_public_key_text(dev):
        raise EnrollmentError(f"{bundle_path} was made for another device (its node key is not "
                              f"the one in {dev})")
    if (dev / BUNDLE).exists():
        installed = EnrollmentBundle.read(dev / BUNDLE)
        if installed.server_id != bundle.server_id:
            raise EnrollmentError(f"{bundle_path} is for another server ({bundle.server_id}) "
                                  f"than the one this device joined ({installed.server_id})")
    check_ca(bundle.ca_certificate)
    opened = _open_keys(dev, bundle)
    for name, data in opened.items():
        atomic_io.write_bytes(ckks_dir(dev) / name, data, private=True)
    atomic_io.write_bytes(dev / CA_FILE, bundle.ca_certificate.encode("ascii"))
    atomic_io.write_json(dev / BUNDLE, bundle.to_dict())
    return bundle


def installed_bundle(device_dir: str | Path) -> EnrollmentBundle:
    """The bundle `install_bundle` kept; EnrollmentError when the device has none yet."""
    path = Path(device_dir) / BUNDLE
    if not path.is_file():
        raise EnrollmentError(f"{device_dir} has no enrollment bundle yet; pass --bundle BUNDLE "
                              "(from `emofl enroll`) once")
    return EnrollmentBundle.read(path)
