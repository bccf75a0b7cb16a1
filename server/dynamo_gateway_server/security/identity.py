"""Who is calling: the Identity the authentication interceptor established for the RPC being handled.

An identity has a principal (the one name used for per-caller limits and in log
lines) and every name the policy may match it by: `token:<name>` for a static
token, `jwt:<sub>` for a JWT, `mtls:<SAN>` and `mtls:<CN>` for a client
certificate, `anonymous` when no authentication is configured. It travels in a
context variable, so the servicer and the tasks an RPC starts see it without the
backend seam knowing about callers. Must not import gRPC.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    principal: str
    """The caller's main name, e.g. "jwt:system:serviceaccount:shop:orders"."""
    names: tuple[str, ...]
    """Every name of the caller a policy rule may match (the principal first)."""
    method: str
    """How the caller was identified: token, jwt, mtls or none."""


ANONYMOUS = Identity("anonymous", ("anonymous",), "none")

_caller: contextvars.ContextVar[Identity] = contextvars.ContextVar("dynamo_gateway_caller", default=ANONYMOUS)


def current_caller() -> Identity:
    return _caller.get()


def set_caller(identity: Identity) -> contextvars.Token[Identity]:
    return _caller.set(identity)


def reset_caller(token: contextvars.Token[Identity]) -> None:
    _caller.reset(token)
