"""RequestGuard: what the servicer asks before a request goes to DynamoDB.

First the policy (may this caller run this operation on every table the request
touches?), then the checks app.py hands in, in its order (DynamoDB's input rules,
the tables' declared rules such as TTL). All look at the request in DynamoDB's
shape, so what is checked is exactly what would be sent. Must not import gRPC.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .identity import current_caller
from .policy import Authorizer, PermissionDenied

log = logging.getLogger(__name__)

# Raises (the codec's InvalidRequestError) to refuse a request in DynamoDB's shape.
RequestCheck = Callable[[str, dict[str, Any]], Awaitable[None]]


class RequestGuard:
    def __init__(self, authorizer: Authorizer, checks: Sequence[RequestCheck] = ()) -> None:
        self.authorizer = authorizer
        self._checks = tuple(checks)

    async def __call__(self, operation: str, params: dict[str, Any]) -> None:
        caller = current_caller()
        try:
            self.authorizer.check(caller, operation, params)
        except PermissionDenied as denied:
            log.warning(
                "policy denied the call",
                extra={
                    "caller": caller.principal,
                    "operation": denied.access.operation,
                    "table": denied.access.table,
                    "index": denied.access.index,
                },
            )
            raise
        for check in self._checks:
            await check(operation, params)
