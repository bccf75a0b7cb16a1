"""SecurityLayer: the security components of one gateway, built from Settings, and their reload loop.

The facade app.py wires: rpc_checks() (what the RPC interceptor checks:
authentication, in-flight limits, request decoding), add_port()
(TLS when configured), guard_for() (the servicer's policy and input limits),
start()/stop() for the loop that re-reads the policy, tokens and JWKS files, and
reload_now() for SIGHUP. Builds everything in the constructor, so a gateway with
an unusable security file fails before it listens. Holds no logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from ..backends import DynamoBackend
from ..config import Settings
from .auth import Authenticator, JwtRules, JwtVerifier, parse_jwks, parse_tokens
from .files import WatchedFile
from .guard import RequestGuard
from .limits import InFlightLimiter
from .policy import Authorizer, parse_policy
from .tls import CertificateFiles

if TYPE_CHECKING:
    from ..interceptors import RpcChecks

log = logging.getLogger(__name__)

REFLECTION_SERVICES = (reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection")


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


class SecurityLayer:
    def __init__(self, settings: Settings, service_name: str) -> None:
        s = settings
        self.settings = settings
        self.service_name = service_name
        self.tls = (
            CertificateFiles(s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file)
            if s.tls_cert_file and s.tls_key_file
            else None
        )
        self.tokens = (
            WatchedFile(
                s.auth_tokens_file, "tokens file", lambda data: parse_tokens(data, s.auth_tokens_file or "")
            )
            if s.auth_tokens_file
            else None
        )
        self.jwks = (
            WatchedFile(s.jwt_jwks_file, "JWKS file", lambda data: parse_jwks(data, s.jwt_jwks_file or ""))
            if s.jwt_jwks_file
            else None
        )
        jwts = None
        if self.jwks is not None:
            rules = JwtRules(
                s.jwt_issuer or "", _split(s.jwt_audiences), _split(s.jwt_algorithms), s.jwt_leeway_s
            )
            jwts = JwtVerifier(self.jwks, rules)
        self.authenticator = Authenticator(self.tokens, jwts, mtls=bool(self.tls and self.tls.mtls))
        self.policy = (
            WatchedFile(s.policy_file, "policy file", lambda data: parse_policy(data, s.policy_file or ""))
            if s.policy_file
            else None
        )
        self.authorizer = Authorizer(self.policy)
        self.limiter = InFlightLimiter(s.max_inflight_rpcs, s.max_inflight_rpcs_per_caller)
        self.reloaded = asyncio.Event()
        """Set whenever a watched file's new version came into force (tests clear and wait on it)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def reflection_enabled(self) -> bool:
        return self.settings.reflection != "off"

    def open_services(self) -> tuple[str, ...]:
        """Services any caller may use without credentials."""
        if self.settings.reflection == "open":
            return (health.SERVICE_NAME, *REFLECTION_SERVICES)
        return (health.SERVICE_NAME,)

    def rpc_checks(self) -> RpcChecks:
        """What the gateway's RpcInterceptor asks of every RPC: who calls (unless the service is
        open), whether there is room, then (innermost) decoding the bytes of the guarded service."""
        from ..interceptors import RpcChecks

        return RpcChecks(
            authenticator=self.authenticator,
            open_services=frozenset(self.open_services()),
            limiter=self.limiter,
            guarded_services=frozenset((self.service_name,)),
            max_request_bytes=self.settings.max_request_bytes,
        )

    def grpc_receive_limit(self) -> int:
        from ..interceptors.request_decoding import GRPC_LIMIT_MARGIN_BYTES

        return self.settings.max_request_bytes + GRPC_LIMIT_MARGIN_BYTES

    def guard_for(self, backend: DynamoBackend) -> RequestGuard:
        return RequestGuard.for_backend(self.authorizer, backend)

    def add_port(self, server: grpc.aio.Server, address: str) -> int:
        if self.tls is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, self.tls.server_credentials())

    # ------------------------------------------------------------ reloads

    def _watched(self) -> list[WatchedFile]:  # type: ignore[type-arg]
        return [file for file in (self.policy, self.tokens, self.jwks) if file is not None]

    def reload_now(self) -> bool:
        """Re-reads every watched file that changed; True if any new version came into force."""
        changed = [file.check() for file in self._watched()]
        if any(changed):
            self.reloaded.set()
        return any(changed)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.security_reload_interval_s)
            try:
                self.reload_now()
            except Exception:  # the loop must outlive a bug in one check; the files stay as they were
                log.exception("checking the security files failed")

    def start(self) -> None:
        if self._watched() and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="security-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def describe(self) -> dict[str, object]:
        """For the startup log line: what is on, without a secret or a file's content."""
        return {
            "tls": "mtls" if self.tls and self.tls.mtls else ("tls" if self.tls else "off"),
            "tokens": bool(self.tokens),
            "jwt": bool(self.jwks),
            "policy": bool(self.policy),
            "reflection": self.settings.reflection,
        }
