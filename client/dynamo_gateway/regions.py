"""Which DynamoDB region served a call, when the gateway serves global tables.

The gateway names it in each answer's trailing metadata (`dynamodb-region`; several, comma
separated, when a batch went to more than one). `regions_served()` collects them for the
calls made inside it; a failure says them in `GatewayError.regions`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable

REGION_METADATA = "dynamodb-region"

_collector: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "dynamo_gateway_regions_served", default=None
)


class regions_served:  # lower case: used as `with regions_served() as regions:`
    """Collects, in order, the regions that served the calls made inside (one entry per call and region).

    >>> with regions_served() as regions:
    ...     await client.get_item("orders", {"pk": "a"})
    >>> regions
    ['eu-west-1']
    """

    __slots__ = ("_token", "regions")

    def __init__(self) -> None:
        self.regions: list[str] = []

    def __enter__(self) -> list[str]:
        self._token = _collector.set(self.regions)
        return self.regions

    def __exit__(self, *exc_info: object) -> None:
        _collector.reset(self._token)


def collecting() -> bool:
    return _collector.get() is not None


def regions_in(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str, ...]:
    """The regions a call's trailing metadata names."""
    for key, value in metadata or ():
        if key == REGION_METADATA:
            text = value.decode() if isinstance(value, bytes) else value
            return tuple(region for region in text.split(",") if region)
    return ()


def note(regions: Iterable[str]) -> None:
    """Adds one call's regions to the innermost regions_served, if any."""
    collected = _collector.get()
    if collected is not None:
        collected.extend(regions)
