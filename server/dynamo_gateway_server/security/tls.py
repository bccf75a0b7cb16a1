"""Transport security: the server's TLS credentials (optionally mTLS), reloaded when the files change.

grpc.dynamic_ssl_server_credentials asks for a certificate configuration before
every new connection's handshake; CertificateFiles answers with a new one when
the certificate, key or client CA file changed (by stat signature, so files
replaced atomically, as Kubernetes rotates mounted secrets, are seen at once),
and None otherwise. A new set is used only once it parses and the key matches
the certificate, so a half-rotated pair never breaks handshakes. With a client
CA, a client without a valid certificate is refused in the handshake (gRPC's
server credentials cannot ask for a certificate and then accept its absence).
peer_names() gives a verified client certificate's names for authentication.
Never logs file contents: the key file is a secret.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from .files import SecurityConfigError, Signature, read_file, signature_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    signatures: tuple[Signature | None, ...]
    configuration: grpc.ServerCertificateConfiguration
    subject: str


def _public_key_bytes(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class CertificateFiles:
    """The server's certificate chain, key and (for mTLS) client CA files, and their current configuration."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str | None = None) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self._lock = threading.Lock()
        self.reloads = 0
        """Configurations handed to gRPC after the first (tests wait on it)."""
        self._rejected: tuple[Signature | None, ...] | None = None
        self._current = self._load()

    @property
    def mtls(self) -> bool:
        return self.client_ca_file is not None

    def _paths(self) -> tuple[str | None, ...]:
        return (self.cert_file, self.key_file, self.client_ca_file)

    def _signatures(self) -> tuple[Signature | None, ...]:
        return tuple(None if path is None else signature_of(path) for path in self._paths())

    def _load(self) -> _Loaded:
        try:
            signatures = self._signatures()
        except OSError as error:
            raise SecurityConfigError(
                f"TLS file {error.filename}: cannot be read ({error.strerror})"
            ) from None
        chain = read_file(self.cert_file, "TLS certificate file")
        key_pem = read_file(self.key_file, "TLS key file")
        try:
            certificates = x509.load_pem_x509_certificates(chain)
        except ValueError:
            raise SecurityConfigError(
                f"TLS certificate file {self.cert_file}: no PEM certificate in it"
            ) from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            # The library's message is not echoed: it could quote part of the key.
            raise SecurityConfigError(
                f"TLS key file {self.key_file}: not an unencrypted PEM private key"
            ) from None
        if _public_key_bytes(key.public_key()) != _public_key_bytes(certificates[0].public_key()):
            raise SecurityConfigError(
                f"TLS key file {self.key_file} does not belong to the certificate in {self.cert_file}"
            )
        client_ca = None
        if self.client_ca_file is not None:
            client_ca = read_file(self.client_ca_file, "TLS client CA file")
            try:
                x509.load_pem_x509_certificates(client_ca)
            except ValueError:
                raise SecurityConfigError(
                    f"TLS client CA file {self.client_ca_file}: no PEM certificate in it"
                ) from None
        configuration = grpc.ssl_server_certificate_configuration(
            [(key_pem, chain)], root_certificates=client_ca
        )
        return _Loaded(signatures, configuration, certificates[0].subject.rfc4514_string())

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's hook, called before each handshake: a new configuration if the files changed, else None."""
        with self._lock:
            try:
                signatures = self._signatures()
            except OSError as error:
                log.error(
                    "TLS file %s cannot be read (%s); keeping the certificate in use",
                    error.filename,
                    error.strerror,
                )
                return None
            if signatures in (self._current.signatures, self._rejected):
                return None
            try:
                loaded = self._load()
            except SecurityConfigError as error:
                # Often a rotation caught halfway (new certificate, old key): the next handshake looks again.
                self._rejected = signatures
                log.warning("%s; keeping the certificate in use", error)
                return None
            self._current = loaded
            self._rejected = None
            self.reloads += 1
            log.info("TLS certificate reloaded", extra={"subject": loaded.subject, "reloads": self.reloads})
            return loaded.configuration

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._current.configuration,
            self.fetch,  # type: ignore[arg-type]  # grpc's stubs omit that the fetcher may return None: no change
            require_client_authentication=self.mtls,
        )


def peer_names(auth_context: Mapping[str, Sequence[bytes]]) -> tuple[str, ...]:
    """A verified client certificate's names as policy names: mtls:<each SAN>, then mtls:<CN>."""
    names: dict[str, None] = {}
    for key in ("x509_subject_alternative_name", "x509_common_name"):
        for value in auth_context.get(key, ()):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if text:
                names[f"mtls:{text}"] = None
    return tuple(names)
