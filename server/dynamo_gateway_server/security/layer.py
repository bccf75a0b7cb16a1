"""SecurityLayer: the security components of one gateway, built from Settings, and their reload loop.

The facade app.py wires: the authenticator and in-flight limiter (which the RPC
interceptor runs), the services they guard and leave open, add_port()
(TLS when configured), guard_for() (the servicer's policy and DynamoDB's input rules),
start()/stop() for the loop that re-reads the policy, tokens and JWKS files, and
reload_now() for SIGHUP. Builds everything in the constructor, so a gateway with
an unusable security file fails before it listens. Holds no logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from ..config import Settings
from .auth import Authenticator, JwtRules, JwtVerifier, parse_jwks, parse_tokens
from .files import WatchedFile
from .guard import RequestCheck, RequestGuard
from .limits import InFlightLimiter
from .policy import Authorizer, parse_policy
from .tls import CertificateFiles

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

    def guarded_and_open(self) -> tuple[frozenset[str], frozenset[str]]:
        """(services whose calls are checked and decoded, services any caller may use unauthenticated)."""
        return frozenset((self.service_name,)), frozenset(self.open_services())

    def guard_for(self, checks: Sequence[RequestCheck]) -> RequestGuard:
        """The policy, then `checks` in their order."""
        return RequestGuard(self.authorizer, checks)

    def add_port(self, server: grpc.aio.Server, address: str) -> int:
        if self.tls is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, self.tls.server_credentials())

    # ------------------------------------------------------------ reloads

    def _watched(self) -> list[WatchedFile[Any]]:  # Any: each file parses into a type of its own
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
