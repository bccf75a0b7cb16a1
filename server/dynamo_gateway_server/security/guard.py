"""RequestGuard: what the servicer asks before a request goes to DynamoDB.

First the policy (may this caller run this operation on every table the request
touches?), then DynamoDB's input rules (input_rules.py: would DynamoDB take it?). Both
look at the request in DynamoDB's shape, so what is checked is exactly what
would be sent. Must not import gRPC.
"""

from __future__ import annotations

import logging
from typing import Any

from ..input_rules import InputRules
from ..key_schema import KeySchema, KeySchemaCache
from .identity import current_caller
from .policy import Authorizer, PermissionDenied

log = logging.getLogger(__name__)


class RequestGuard:
    def __init__(self, authorizer: Authorizer, schemas: KeySchemaCache) -> None:
        """`schemas`: the gateway's shared cache (app.py owns and closes it)."""
        self.authorizer = authorizer
        self._schemas = schemas
        self.input_rules = InputRules(self._schema_of)

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
        await self.input_rules.check(operation, params)
