"""Paginators for the async facade: botocore's pagination, page for page, with awaited calls.

`AsyncPaginator(method, config, model).paginate(**params)` reads the operation's entry
of botocore's paginators-1 model and PaginationConfig (PageSize, MaxItems,
StartingToken) and gives an AsyncPageIterator, which repeats botocore's page loop
(PageIterator.__iter__) with `await`: the same requests, the same MaxItems truncation,
the same NextToken/resume_token (botocore's TokenEncoder/TokenDecoder, so tokens pass
between boto3, the sync facade and this one) and build_full_result(). Only botocore's
public names are used, so its PageIterator's internals may change without breaking
this. Imports botocore; nothing outside boto3_compat may import this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jmespath
from botocore.exceptions import PaginationError
from botocore.model import OperationModel
from botocore.paginate import TokenDecoder, TokenEncoder
from botocore.utils import merge_dicts, set_value_from_jmespath
from jmespath.parser import ParsedResult

# The key botocore adds to a token that stops inside a page: how many of that page's items
# were already returned, to skip when resuming.
_TRUNCATE = "boto_truncate_amount"

# An async facade method, e.g. query: keyword arguments in, boto3's response dict out.
Method = Callable[..., Awaitable[dict[str, Any]]]


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


class AsyncPageIterator:
    """The pages of one paginated call, read with `async for page in ...`.

    After the pages ran out, `resume_token` is None; after MaxItems stopped them, it is the
    StartingToken that continues from there.
    """

    def __init__(
        self,
        method: Method,
        config: dict[str, Any],
        op_kwargs: dict[str, Any],
        *,
        max_items: int | None,
        starting_token: str | None,
        page_size: int | str | None,
    ) -> None:
        self._method = method
        self._input_token = _as_list(config["input_token"])
        self._output_token = [jmespath.compile(e) for e in _as_list(config["output_token"])]
        more_results = config.get("more_results")
        self._more_results = jmespath.compile(more_results) if more_results is not None else None
        self._non_aggregate_keys = [jmespath.compile(e) for e in config.get("non_aggregate_keys", [])]
        self._limit_key: str | None = config.get("limit_key")
        self._op_kwargs = op_kwargs
        self._max_items = max_items
        self._starting_token = starting_token
        self._page_size = page_size
        # Items, Count, ScannedCount: joined or summed over the pages by build_full_result.
        self.result_keys: list[ParsedResult] = [jmespath.compile(e) for e in _as_list(config["result_key"])]
        self.resume_token: str | None = None
        # ConsumedCapacity: taken from the first page, not summed.
        self.non_aggregate_part: dict[str, Any] = {}

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        kwargs = self._op_kwargs
        next_token: dict[str, Any] = {name: None for name in self._input_token}
        skip = 0
        if self._starting_token is not None:
            next_token, skip = self._parse_starting_token(self._starting_token)
            _inject_token(kwargs, next_token)
        if self._page_size is not None and self._limit_key is not None:
            kwargs[self._limit_key] = self._page_size
        primary = self.result_keys[0]
        previous_token: dict[str, Any] | None = None
        total = 0
        first = True
        while True:
            page = await self._method(**kwargs)
            if first:
                if self._starting_token is not None:
                    self._skip_returned(page, skip)
                self.non_aggregate_part = {}
                for expression in self._non_aggregate_keys:
                    set_value_from_jmespath(
                        self.non_aggregate_part, expression.expression, expression.search(page)
                    )
                first = False
            else:
                skip = 0  # only the first page can start inside a page returned before
            items = primary.search(page)
            if items is None:
                items = []
            if self._max_items is not None and total + len(items) > self._max_items:
                keep = self._max_items - total
                set_value_from_jmespath(page, primary.expression, items[:keep])
                # Resuming asks for this page again and skips what was returned (counted from
                # the page's start, hence the items already skipped on a resumed first page).
                self.resume_token = TokenEncoder().encode({**next_token, _TRUNCATE: keep + skip})
                yield page
                return
            yield page
            total += len(items)
            next_token = self._next_token(page)
            if all(value is None for value in next_token.values()):
                return
            if self._max_items is not None and total == self._max_items:
                self.resume_token = TokenEncoder().encode(next_token)  # on a page boundary
                return
            if previous_token is not None and previous_token == next_token:
                raise PaginationError(message=f"The same next token was received twice: {next_token}")
            _inject_token(kwargs, next_token)
            previous_token = next_token

    def _parse_starting_token(self, token: str) -> tuple[dict[str, Any], int]:
        """The service's token and how many items of its first page were already returned."""
        try:
            parsed = TokenDecoder().decode(token)
            skip = parsed.pop(_TRUNCATE) if _TRUNCATE in parsed else 0
        except (ValueError, TypeError):
            return self._parse_old_token(token)
        return parsed, skip

    def _parse_old_token(self, token: str) -> tuple[dict[str, Any], int]:
        """botocore's fallback for what is not an encoded token: its old form, the service
        tokens joined by "___" and optionally the skip count. Kept so that a hand-made token
        fails (or works) as with boto3."""
        parts = token.split("___")
        skip = 0
        if len(parts) == len(self._input_token) + 1:
            try:
                skip = int(parts.pop())
            except ValueError:
                parts = [token]
        if len(parts) > len(self._input_token):
            raise ValueError(f"Bad starting token: {token}")
        values: list[str | None] = [None if part == "None" else part for part in parts]
        values += [None] * (len(self._input_token) - len(values))
        return dict(zip(self._input_token, values, strict=True)), skip

    def _skip_returned(self, page: dict[str, Any], skip: int) -> None:
        """Drops the items a StartingToken says were returned already, as botocore does: the
        other result keys start over (lists and strings empty), except numbers, which keep
        the page's own (Count and ScannedCount still say what DynamoDB read)."""
        primary = self.result_keys[0]
        items = primary.search(page)
        set_value_from_jmespath(
            page, primary.expression, items[skip:] if isinstance(items, list | str) else None
        )
        for key in self.result_keys[1:]:
            sample = key.search(page)
            if isinstance(sample, list):
                empty: Any = []
            elif isinstance(sample, str):
                empty = ""
            elif isinstance(sample, int | float):
                empty = sample
            else:
                empty = None
            set_value_from_jmespath(page, key.expression, empty)

    def _next_token(self, page: dict[str, Any]) -> dict[str, Any]:
        if self._more_results is not None and not self._more_results.search(page):
            return {}
        # An empty value is no token.
        return {
            name: expression.search(page) or None
            for expression, name in zip(self._output_token, self._input_token, strict=False)
        }

    async def build_full_result(self) -> dict[str, Any]:
        """Every page merged as botocore merges them: lists joined, numbers summed, the
        non-aggregate keys of the first page, and NextToken when MaxItems stopped early."""
        result: dict[str, Any] = {}
        async for page in self:
            for key in self.result_keys:
                value = key.search(page)
                if value is None:
                    continue
                existing = key.search(result)
                if existing is None:
                    set_value_from_jmespath(result, key.expression, value)
                elif isinstance(value, list):
                    existing.extend(value)
                elif isinstance(value, int | float | str):
                    set_value_from_jmespath(result, key.expression, existing + value)
        merge_dicts(result, self.non_aggregate_part)
        if self.resume_token is not None:
            result["NextToken"] = self.resume_token
        return result

    async def search(self, expression: str) -> AsyncIterator[Any]:
        """The JMESPath expression's results over the pages; lists are flattened."""
        compiled = jmespath.compile(expression)
        async for page in self:
            results = compiled.search(page)
            if isinstance(results, list):
                for result in results:
                    yield result
            else:
                yield results


def _inject_token(kwargs: dict[str, Any], token: dict[str, Any]) -> None:
    for name, value in token.items():
        if value is not None and value != "None":
            kwargs[name] = value
        else:
            kwargs.pop(name, None)


class AsyncPaginator:
    """The async facade's get_paginator("query" | "scan"): paginate(**params) -> AsyncPageIterator."""

    def __init__(self, method: Method, config: dict[str, Any], model: OperationModel) -> None:
        self._method = method
        # The operation's entry of botocore's paginators-1 model.
        self._config = config
        self._model = model

    def paginate(self, **kwargs: Any) -> AsyncPageIterator:
        paging = kwargs.pop("PaginationConfig", {})
        max_items = paging.get("MaxItems")
        page_size = paging.get("PageSize")
        if page_size is not None:
            limit_key = self._config.get("limit_key")
            if limit_key is None:
                raise PaginationError(
                    message="PageSize parameter is not supported for the pagination interface for this operation."
                )
            # Sent as the limit parameter, so of its type.
            members = self._model.input_shape.members if self._model.input_shape else {}
            shape = members.get(limit_key)
            page_size = (
                str(page_size) if shape is not None and shape.type_name == "string" else int(page_size)
            )
        return AsyncPageIterator(
            self._method,
            self._config,
            kwargs,
            max_items=int(max_items) if max_items is not None else None,
            starting_token=paging.get("StartingToken"),
            page_size=page_size,
        )
