"""RequestGuard: what the servicer asks before a request goes to DynamoDB.

First the policy (may this caller run this operation on every table the request
touches?), then the input limits (is it a request DynamoDB would take?). Both
look at the request in DynamoDB's shape, so what is checked is exactly what
would be sent. Must not import gRPC.
"""

from __future__ import annotations

import logging
from typing import Any

from ..backends import DynamoBackend
from ..key_schema import KeySchema, KeySchemaCache, shared_key_schemas
from .identity import current_caller
from .limits import RequestLimits
from .policy import Authorizer, PermissionDenied

log = logging.getLogger(__name__)


class RequestGuard:
    def __init__(self, authorizer: Authorizer, schemas: KeySchemaCache, owns_schemas: bool = True) -> None:
        self.authorizer = authorizer
        self._schemas = schemas
        self._owns_schemas = owns_schemas
        self.limits = RequestLimits(self._schema_of)

    @classmethod
    def for_backend(cls, authorizer: Authorizer, backend: DynamoBackend) -> RequestGuard:
        """Shares the instrumented backend's key schema cache when there is one (one lookup per table)."""
        shared = shared_key_schemas(backend)
        if shared is not None:
            return cls(authorizer, shared, owns_schemas=False)
        return cls(authorizer, KeySchemaCache(backend))

    async def _schema_of(self, table: str) -> KeySchema | None:
        await self._schemas.learn(table)
        return self._schemas.get(table)

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
        await self.limits.check(operation, params)

    async def close(self) -> None:
        if self._owns_schemas:
            await self._schemas.close()
