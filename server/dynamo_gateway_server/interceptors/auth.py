"""AuthenticationInterceptor: establishes who is calling, or ends the RPC with UNAUTHENTICATED.

Runs security.auth's Authenticator on the call's metadata and its verified
client certificate, then puts the Identity in the caller context variable for
the rest of the RPC (the policy and the per-caller limits read it). Services
listed as open (health, and reflection unless closed) skip it, so probes and
grpcurl work without credentials. It runs before the request is decoded.
Must not import the servicer or the backends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc

from ..security import statuses
from ..security.auth import Authenticator, Unauthenticated
from ..security.identity import reset_caller, set_caller
from ..security.tls import peer_names
from ._abort import abort
from ._handlers import split_method, wrap_handler

log = logging.getLogger("dynamo_gateway_server.security")


class AuthenticationInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, open_services: Iterable[str]) -> None:
        self._authenticator = authenticator
        self._open = frozenset(open_services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        service, _ = split_method(handler_call_details.method)
        if handler is None or service in self._open or not self._authenticator.required:
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        method = handler_call_details.method

        @contextlib.asynccontextmanager
        async def around(context: Any) -> AsyncIterator[Any]:
            try:
                identity = self._authenticator.authenticate(metadata, peer_names(context.auth_context()))
            except Unauthenticated as failure:
                log.warning(
                    "caller not authenticated",
                    extra={"failure": failure.failure, "method": method, "peer": context.peer()},
                )
                await abort(context, statuses.unauthenticated(failure))
            token = set_caller(identity)
            try:
                yield context
            finally:
                reset_caller(token)

        return wrap_handler(handler, around)  # type: ignore[return-value]
