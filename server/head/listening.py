"""Where the encrypted-head service listens: the port, its TLS credentials, and the bind.

Everything is checked before the server starts, and refused in one line naming the problem:
a port outside 0..65535 (gRPC would silently serve another one: 99999 wraps to 34463, -1 to
65535), a port another server already listens on (gRPC's default SO_REUSEPORT would let a
second server share it, splitting requests between two models), TLS files that are not
regular files, not PEM, or a key that is not the certificate's.
"""

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from emofl.common.errors import SettingsError, UserError
from emofl.common.processes import bind_problem
from emofl.common.storage.input_files import check_input_file

HIGHEST_PORT = 65535
# Options of every head server: never share a port with another process.
NO_PORT_SHARING = [("grpc.so_reuseport", 0)]


def check_port(port: int) -> None:
    """SettingsError unless `port` is 0 (any free port) or a port number 1..65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= HIGHEST_PORT:
        raise SettingsError(f"--port must be 0..{HIGHEST_PORT} (0: any free port), got {port!r}")


def server_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    """TLS credentials from PEM files, checked here so a wrong file fails with its name."""
    cert = check_input_file(cert_file, "--tls-cert", SettingsError).read_bytes()
    key = check_input_file(key_file, "--tls-key", SettingsError).read_bytes()
    try:
        certificate = x509.load_pem_x509_certificate(cert)
    except ValueError:
        raise SettingsError(f"--tls-cert {cert_file} is not a PEM certificate") from None
    try:
        private_key = load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise SettingsError(f"--tls-key {key_file} is not an unencrypted PEM private key") from None
    if _public_bytes(private_key.public_key()) != _public_bytes(certificate.public_key()):
        raise SettingsError(f"--tls-key {key_file} does not match the certificate in "
                            f"--tls-cert {cert_file}")
    return grpc.ssl_server_credentials([(key, cert)])


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def bind(server: grpc.Server, host: str, port: int,
         credentials: grpc.ServerCredentials | None) -> int:
    """Add the listening port to `server`; the port bound. UserError saying why when it cannot
    be bound (in use, not an address of this host, ...). The address is tried with a plain
    socket first, so that gRPC's own log line about a failed bind never reaches stderr."""
    address = f"{host}:{port}"
    if problem := bind_problem(host, port):
        raise UserError(f"cannot listen on {address}: {problem}")
    try:
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(f"cannot listen on {address}: gRPC could not bind it")
    return bound
