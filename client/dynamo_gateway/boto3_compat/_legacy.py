"""DynamoDB's legacy parameters, rewritten as the expressions that mean the same before anything is sent.

Older code and libraries still send AttributesToGet, KeyConditions, QueryFilter, ScanFilter,
Expected, AttributeUpdates and ConditionalOperator. DynamoDB serves them; the gateway's
contracts carry expressions only. translate() turns a legacy request into its expression form
with DynamoDB's meaning, which is not always the obvious spelling:

    NE              #a <> :v                                      true for a missing attribute
    NOT_CONTAINS    attribute_exists(#a) AND NOT contains(#a, :v)  false for a missing one
    Exists false    attribute_not_exists(#a)
    ADD of a list   SET #a = list_append(if_not_exists(#a, :e), :v)   legacy ADD appends
    DELETE alone    REMOVE #a

It refuses, with DynamoDB's own ValidationException texts, what DynamoDB refuses before it
looks at a table (both styles mixed, a wrong number of values, Exists true without a Value,
ConditionalOperator with fewer than two conditions, ...): the expression form would be refused
in other words, or not at all. Placeholders are #l0, :l0, ..., skipping any the request already
uses (a Query may pair KeyConditions with its own FilterExpression). reworded() and shaped()
give back, in an answer, the words and shapes that differ between the two styles.
Pure: no I/O, no grpc, no botocore; raises LocalValidationError.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import _checks
from ._failures import LocalValidationError

Params = Mapping[str, Any]

LEGACY = frozenset(
    {
        "AttributesToGet",
        "KeyConditions",
        "QueryFilter",
        "ScanFilter",
        "Expected",
        "AttributeUpdates",
        "ConditionalOperator",
    }
)

_INVALID = "One or more parameter values were invalid: "

# The enums, in the order DynamoDB lists them when it refuses another value.
_OPERATORS = (
    *("IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT"),
    *("NOT_NULL", "NE", "LE", "BEGINS_WITH", "GE", "CONTAINS"),
)
_ACTIONS = ("ADD", "PUT", "DELETE")
_CONDITIONAL_OPERATORS = ("OR", "AND")

# How many values each operator takes, (fewest, most; None is no limit); the others take one.
_ARITY: dict[str, tuple[int, int | None]] = {
    "NULL": (0, 0),
    "NOT_NULL": (0, 0),
    "IN": (1, None),
    "BETWEEN": (2, 2),
}
# The value types each operator takes; EQ and NE take any.
_SCALARS = frozenset({"S", "N", "B"})
_TYPES = {
    **dict.fromkeys(("LT", "LE", "GT", "GE", "IN", "BETWEEN"), _SCALARS),
    "BEGINS_WITH": frozenset({"S", "B"}),
    # contains() looks for a member of a list too, so BOOL and NULL make sense; sets, maps and lists not.
    **dict.fromkeys(("CONTAINS", "NOT_CONTAINS"), _SCALARS | {"BOOL", "NULL"}),
}
_COMPARISONS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
# What a key condition can be; DynamoDB reads the others as no index lookup at all.
_KEY_OPERATORS = frozenset({"EQ", "LE", "LT", "GE", "GT", "BEGINS_WITH", "BETWEEN"})
_SETS = frozenset({"SS", "NS", "BS"})
_TYPE_MISMATCH = "Type mismatch for attribute to update"


@dataclass(frozen=True)
class _Style:
    """One operation's parameters of each style, in the order DynamoDB names them when they mix."""

    expressions: tuple[str, ...]
    legacy: tuple[str, ...]


_STYLES = {
    "GetItem": _Style(("ProjectionExpression",), ("AttributesToGet",)),
    "PutItem": _Style(("ConditionExpression",), ("Expected", "ConditionalOperator")),
    "DeleteItem": _Style(("ConditionExpression",), ("Expected", "ConditionalOperator")),
    "UpdateItem": _Style(
        ("UpdateExpression", "ConditionExpression"), ("AttributeUpdates", "Expected", "ConditionalOperator")
    ),
    "Query": _Style(
        ("ProjectionExpression", "FilterExpression", "KeyConditionExpression"),
        ("AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"),
    ),
    "Scan": _Style(
        ("ProjectionExpression", "FilterExpression"), ("AttributesToGet", "ScanFilter", "ConditionalOperator")
    ),
}


class _Placeholders:
    """The #lN and :lN names of one request, none of them one the request already uses."""

    def __init__(self, params: Params) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._taken = {
            *params.get("ExpressionAttributeNames", ()),
            *params.get("ExpressionAttributeValues", ()),
        }
        self._counters = {"#": itertools.count(), ":": itertools.count()}
        self._of_attribute: dict[str, str] = {}

    def _fresh(self, sigil: str) -> str:
        while True:
            candidate = f"{sigil}l{next(self._counters[sigil])}"
            if candidate not in self._taken:
                return candidate

    def name(self, attribute: str) -> str:
        """One placeholder per attribute: a legacy name is always a whole top-level name, never a path."""
        if attribute not in self._of_attribute:
            placeholder = self._fresh("#")
            self._of_attribute[attribute] = placeholder
            self.names[placeholder] = attribute
        return self._of_attribute[attribute]

    def value(self, value: Any) -> str:
        placeholder = self._fresh(":")
        self.values[placeholder] = value
        return placeholder


# ---------------------------------------------------------------- DynamoDB's refusals


def _refuse(message: str) -> LocalValidationError:
    return LocalValidationError(message)


def _camel(name: str) -> str:
    return name[0].lower() + name[1:]


def _check_enums(params: Params, maps: Iterable[str]) -> None:
    """DynamoDB's constraint check of the legacy enums, which comes before any other check of them."""
    errors = []

    def refuse(value: str, field: str, allowed: tuple[str, ...]) -> None:
        errors.append(
            f"Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )

    operator = params.get("ConditionalOperator")
    if operator is not None and operator not in _CONDITIONAL_OPERATORS:
        refuse(operator, "conditionalOperator", _CONDITIONAL_OPERATORS)
    for field in maps:
        for attribute, condition in (params.get(field) or {}).items():
            comparison = condition.get("ComparisonOperator")
            where = f"{_camel(field)}.{attribute}.member.comparisonOperator"
            if comparison is None and field != "Expected":
                # botocore requires it too, unless the client skips parameter validation.
                errors.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
            elif comparison is not None and comparison not in _OPERATORS:
                refuse(comparison, where, _OPERATORS)
    for attribute, update in (params.get("AttributeUpdates") or {}).items():
        action = update.get("Action")
        if action is not None and action not in _ACTIONS:
            refuse(action, f"attributeUpdates.{attribute}.member.action", _ACTIONS)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise _refuse(count + "; ".join(errors))


def _check_styles(params: Params, style: _Style) -> None:
    """DynamoDB takes one style per request; names and values belong to expressions only."""
    expressions = [name for name in style.expressions if name in params]
    if expressions:
        # KeyConditions may go with the other expressions: only KeyConditionExpression replaces it.
        legacy = [
            name
            for name in style.legacy
            if name in params and not (name == "KeyConditions" and "KeyConditionExpression" not in params)
        ]
        if legacy:
            raise _refuse(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(legacy)}}} "
                f"Expression parameters: {{{', '.join(expressions)}}}"
            )
    if "ExpressionAttributeNames" in params and not expressions:
        raise _refuse("ExpressionAttributeNames can only be specified when using expressions")
    valued = [name for name in style.expressions if name != "ProjectionExpression"]
    if valued and "ExpressionAttributeValues" in params and not any(name in params for name in valued):
        verb = "are" if len(valued) > 1 else "is"
        raise _refuse(
            f"ExpressionAttributeValues can only be specified when using expressions: {' and '.join(valued)} {verb} null"
        )


def _check_conditional_operator(params: Params, conditions: str) -> None:
    """ConditionalOperator joins conditions: DynamoDB wants two or more of them to join."""
    if "ConditionalOperator" not in params:
        return
    count = len(params.get(conditions) or {})
    if count == 0:
        raise _refuse("ConditionalOperator cannot be used without Filter or Expected")
    if count == 1:
        raise _refuse("ConditionalOperator can only be used when Filter or Expected has two or more elements")


def _check_attributes_to_get(params: Params) -> None:
    names = params.get("AttributesToGet")
    if names is None:
        return
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _refuse(f"{_INVALID}Duplicate value in attribute name: {name}")
        seen.add(name)


def _check_select(params: Params, operation: str) -> None:
    """Only SPECIFIC_ATTRIBUTES goes with AttributesToGet (DynamoDB words it once per operation)."""
    select = params.get("Select")
    if "AttributesToGet" not in params or select in (None, "SPECIFIC_ATTRIBUTES"):
        return
    chosen = "only the Count" if select == "COUNT" else select
    prefix = "1 validation error detected: " if operation == "Query" else ""
    raise _refuse(f"{prefix}Cannot specify the AttributesToGet when choosing to get {chosen}")


def _kind(value: Mapping[str, Any]) -> str:
    return next(iter(value))


def _descending(low: Mapping[str, Any], high: Mapping[str, Any]) -> bool:
    """Whether two bounds of one type are the wrong way round, as DynamoDB orders them: numbers by
    value, strings by their UTF-8 bytes, binary as unsigned bytes."""
    kind, first = next(iter(low.items()))
    second = high[kind]
    if kind == "N":
        return Decimal(first) > Decimal(second)

    def raw(data: Any) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    return raw(first) > raw(second)


def _check_values(operator: str, values: list[Any]) -> None:
    """What DynamoDB checks of a comparison's values, in its order."""
    for value in values:
        _checks.value(value)
    fewest, most = _ARITY.get(operator, (1, 1))
    if len(values) < fewest or (most is not None and len(values) > most):
        raise _refuse(f"{_INVALID}Invalid number of argument(s) for the {operator} ComparisonOperator")
    kinds = [_kind(value) for value in values]
    if len(set(kinds)) > 1:
        raise _refuse(f"{_INVALID}AttributeValues inside AttributeValueList must be of same type")
    allowed = _TYPES.get(operator)
    for kind in kinds:
        if allowed is not None and kind not in allowed:
            raise _refuse(
                f"{_INVALID}ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
            )
    if operator == "BETWEEN" and _descending(values[0], values[1]):
        raise _refuse(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        )


# ---------------------------------------------------------------- expressions


def _term(operator: str, attribute: str, values: list[Any], placeholders: _Placeholders) -> str:
    """One comparison as an expression; values already checked."""
    name = placeholders.name(attribute)
    if operator in _COMPARISONS:
        return f"{name} {_COMPARISONS[operator]} {placeholders.value(values[0])}"
    if operator == "NOT_NULL":
        return f"attribute_exists({name})"
    if operator == "NULL":
        return f"attribute_not_exists({name})"
    if operator == "CONTAINS":
        return f"contains({name}, {placeholders.value(values[0])})"
    if operator == "NOT_CONTAINS":
        # Unlike NOT contains(), legacy NOT_CONTAINS is false for a missing attribute (NE is true).
        return f"attribute_exists({name}) AND NOT contains({name}, {placeholders.value(values[0])})"
    if operator == "BEGINS_WITH":
        return f"begins_with({name}, {placeholders.value(values[0])})"
    if operator == "IN":
        return f"{name} IN ({', '.join(placeholders.value(value) for value in values)})"
    return f"{name} BETWEEN {placeholders.value(values[0])} AND {placeholders.value(values[1])}"


def _joined(terms: list[str], conditional_operator: str | None) -> str:
    if len(terms) == 1:
        return terms[0]
    joiner = " OR " if conditional_operator == "OR" else " AND "
    return joiner.join(f"({term})" for term in terms)


def _conditions(conditions: Params) -> list[tuple[str, str, list[Any]]]:
    """A QueryFilter, ScanFilter or KeyConditions map, checked: (attribute, operator, values)."""
    checked = []
    for attribute, condition in conditions.items():
        operator = condition["ComparisonOperator"]  # present: _check_enums saw to it
        values = list(condition.get("AttributeValueList", ()))
        _check_values(operator, values)
        checked.append((attribute, operator, values))
    return checked


def _filter(
    conditions: Params | None, conditional_operator: str | None, placeholders: _Placeholders
) -> str | None:
    if not conditions:
        return None  # an empty map is no filter, as in DynamoDB
    terms = [_term(op, attribute, values, placeholders) for attribute, op, values in _conditions(conditions)]
    return _joined(terms, conditional_operator)


def _expected(
    expected: Params | None, conditional_operator: str | None, placeholders: _Placeholders
) -> str | None:
    """Expected as a condition, after DynamoDB's checks of each ExpectedAttributeValue, in its order."""
    if not expected:
        return None
    terms = []
    for attribute, entry in expected.items():
        has_list, has_value = "AttributeValueList" in entry, "Value" in entry
        if has_list and has_value:
            raise _refuse(
                f"{_INVALID}Value and AttributeValueList cannot be used together for Attribute: {attribute}"
            )
        operator = entry.get("ComparisonOperator")
        if operator is not None:
            if "Exists" in entry:
                raise _refuse(
                    f"{_INVALID}Exists and ComparisonOperator cannot be used together for Attribute: {attribute}"
                )
            if operator not in ("NULL", "NOT_NULL") and not has_list and not has_value:
                raise _refuse(
                    f"{_INVALID}Value or AttributeValueList must be used with ComparisonOperator: {operator} "
                    f"for Attribute: {attribute}"
                )
            values = list(entry["AttributeValueList"]) if has_list else [entry["Value"]] if has_value else []
            _check_values(operator, values)
            terms.append(_term(operator, attribute, values, placeholders))
            continue
        if has_list:
            raise _refuse(
                f"{_INVALID}AttributeValueList can only be used with a ComparisonOperator for Attribute: {attribute}"
            )
        # Exists defaults to true, which needs a Value to compare; Exists false forbids one.
        exists = entry.get("Exists", True)
        if exists and not has_value:
            said = "true" if "Exists" in entry else "null"
            raise _refuse(
                f"{_INVALID}Value must be provided when Exists is {said} for Attribute: {attribute}"
            )
        if not exists and has_value:
            raise _refuse(f"{_INVALID}Value cannot be used when Exists is false for Attribute: {attribute}")
        if has_value:
            _checks.value(entry["Value"])
            terms.append(_term("EQ", attribute, [entry["Value"]], placeholders))
        else:
            terms.append(_term("NULL", attribute, [], placeholders))
    return _joined(terms, conditional_operator)


def _updates(updates: Params | None, placeholders: _Placeholders) -> str | None:
    """AttributeUpdates as an update expression, after DynamoDB's checks of each action."""
    if not updates:
        return None
    clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for attribute, update in updates.items():
        action = update.get("Action", "PUT")
        value = update.get("Value")
        if value is not None:
            _checks.value(value)
        if value is None and action != "DELETE":
            raise _refuse(f"{_INVALID}Only DELETE action is allowed when no attribute value is specified")
        name = placeholders.name(attribute)
        if action == "PUT":
            clauses["SET"].append(f"{name} = {placeholders.value(value)}")
        elif action == "DELETE":
            if value is None:
                clauses["REMOVE"].append(name)
            elif _kind(value) in _SETS:
                clauses["DELETE"].append(f"{name} {placeholders.value(value)}")
            else:
                raise _refuse(
                    f"{_INVALID}DELETE action with value is not supported for the type {_kind(value)}"
                )
        elif _kind(value) == "L":
            # Legacy ADD appends to a list (starting one if there is none); ADD in an expression cannot.
            empty = placeholders.value({"L": []})
            clauses["SET"].append(
                f"{name} = list_append(if_not_exists({name}, {empty}), {placeholders.value(value)})"
            )
        elif _kind(value) in _SETS or _kind(value) == "N":
            clauses["ADD"].append(f"{name} {placeholders.value(value)}")
        else:
            raise _refuse(f"{_INVALID}ADD action is not supported for the type {_kind(value)}")
    return " ".join(f"{clause} {', '.join(actions)}" for clause, actions in clauses.items() if actions)


def _projection(names: Iterable[str] | None, placeholders: _Placeholders) -> str | None:
    if names is None:
        return None
    return ", ".join(placeholders.name(name) for name in names)


def _key_condition(conditions: Params, placeholders: _Placeholders) -> str:
    checked = _conditions(conditions)
    if len(checked) not in (1, 2):
        raise _refuse("Conditions can be of length 1 or 2 only")
    if any(operator not in _KEY_OPERATORS for _, operator, _ in checked):
        raise _refuse("Attempted conditional constraint is not an indexable operation")
    # Always ANDed: ConditionalOperator applies to QueryFilter only.
    return " AND ".join(
        _term(operator, attribute, values, placeholders) for attribute, operator, values in checked
    )


def _with_expressions(
    params: Params, placeholders: _Placeholders, **expressions: str | None
) -> dict[str, Any]:
    """The request without its legacy parameters, with their expressions and placeholders instead."""
    out = {name: value for name, value in params.items() if name not in LEGACY}
    out.update({name: text for name, text in expressions.items() if text is not None})
    if placeholders.names:
        out["ExpressionAttributeNames"] = {**params.get("ExpressionAttributeNames", {}), **placeholders.names}
    if placeholders.values:
        out["ExpressionAttributeValues"] = {
            **params.get("ExpressionAttributeValues", {}),
            **placeholders.values,
        }
    return out


# ---------------------------------------------------------------- per operation


def _first_checks(operation: str, params: Params, maps: tuple[str, ...] = ()) -> None:
    """What DynamoDB checks before the legacy parameters themselves: table name, enums, styles."""
    if "TableName" in params:
        _checks.table_name(params["TableName"])
    _check_enums(params, maps)
    _check_styles(params, _STYLES[operation])


def _get_item(params: Params) -> dict[str, Any]:
    _first_checks("GetItem", params)
    _check_attributes_to_get(params)
    placeholders = _Placeholders(params)
    projection = _projection(params.get("AttributesToGet"), placeholders)
    return _with_expressions(params, placeholders, ProjectionExpression=projection)


def _batch_get_item(params: Params) -> dict[str, Any]:
    tables = {}
    for table, entry in params["RequestItems"].items():
        if LEGACY & entry.keys():
            _check_styles(entry, _STYLES["GetItem"])
            _check_attributes_to_get(entry)
            placeholders = _Placeholders(entry)
            projection = _projection(entry.get("AttributesToGet"), placeholders)
            entry = _with_expressions(entry, placeholders, ProjectionExpression=projection)
        tables[table] = entry
    return {**params, "RequestItems": tables}


def _write(operation: str, params: Params) -> dict[str, Any]:
    _first_checks(operation, params, ("Expected",))
    _check_conditional_operator(params, "Expected")
    placeholders = _Placeholders(params)
    update = _updates(params.get("AttributeUpdates"), placeholders)
    condition = _expected(params.get("Expected"), params.get("ConditionalOperator"), placeholders)
    if operation == "UpdateItem":
        return _with_expressions(params, placeholders, UpdateExpression=update, ConditionExpression=condition)
    return _with_expressions(params, placeholders, ConditionExpression=condition)


def _query(params: Params) -> dict[str, Any]:
    _first_checks("Query", params, ("KeyConditions", "QueryFilter"))
    _check_conditional_operator(params, "QueryFilter")
    placeholders = _Placeholders(params)
    query_filter = _filter(params.get("QueryFilter"), params.get("ConditionalOperator"), placeholders)
    _check_attributes_to_get(params)
    _check_select(params, "Query")
    if "KeyConditions" not in params and "KeyConditionExpression" not in params:
        raise _refuse(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
        )
    key_condition = (
        _key_condition(params["KeyConditions"], placeholders) if "KeyConditions" in params else None
    )
    projection = _projection(params.get("AttributesToGet"), placeholders)
    return _with_expressions(
        params,
        placeholders,
        KeyConditionExpression=key_condition,
        FilterExpression=query_filter,
        ProjectionExpression=projection,
    )


def _scan(params: Params) -> dict[str, Any]:
    _first_checks("Scan", params, ("ScanFilter",))
    _check_conditional_operator(params, "ScanFilter")
    _check_attributes_to_get(params)
    placeholders = _Placeholders(params)
    scan_filter = _filter(params.get("ScanFilter"), params.get("ConditionalOperator"), placeholders)
    _check_select(params, "Scan")
    projection = _projection(params.get("AttributesToGet"), placeholders)
    return _with_expressions(
        params, placeholders, FilterExpression=scan_filter, ProjectionExpression=projection
    )


def translate(operation: str, params: Params) -> dict[str, Any]:
    """The request in expressions only; a request without legacy parameters comes back as it is."""
    if operation == "BatchGetItem":
        if any(LEGACY & entry.keys() for entry in params["RequestItems"].values()):
            return _batch_get_item(params)
        return dict(params)
    if operation not in _STYLES or not LEGACY & params.keys():
        return dict(params)
    if operation == "GetItem":
        return _get_item(params)
    if operation == "Query":
        return _query(params)
    if operation == "Scan":
        return _scan(params)
    return _write(operation, params)


# ---------------------------------------------------------------- answers

# (legacy parameter, the start of what DynamoDB says of its expression form, what it says of the
# legacy one, whether the rest of the message stays): one refusal, worded after what the caller sent.
_REWORDED = (
    (
        "QueryFilter",
        "Filter Expression can only contain non-primary key attributes",
        "QueryFilter can only contain non-primary key attributes",
        True,
    ),
    # ADD or DELETE of the wrong type: the expression's ADD, DELETE or list_append says it its own way.
    (
        "AttributeUpdates",
        "An operand in the update expression has an incorrect data type",
        _TYPE_MISMATCH,
        False,
    ),
    (
        "AttributeUpdates",
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: "
        "list_append",
        _TYPE_MISMATCH,
        False,
    ),
)


def reworded(error: Any, operation: str, params: Params) -> Any:
    """The botocore error raised for a translated request, in the words DynamoDB uses for the legacy one."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict) or not LEGACY & params.keys():
        return error
    message = response.get("Error", {}).get("Message", "")
    for parameter, expression_words, legacy_words, keep_rest in _REWORDED:
        if parameter in params and message.startswith(expression_words):
            message = legacy_words + (message[len(expression_words) :] if keep_rest else "")
            break
    else:
        return error
    response = {**response, "Error": {**response["Error"], "Message": message}}
    for member in ("message", "Message"):
        if member in response:
            response[member] = message
    result = type(error)(response, error.operation_name)
    result.gateway_error = getattr(error, "gateway_error", None)
    return result


def shaped(operation: str, answer: dict[str, Any], params: Params) -> dict[str, Any]:
    """BatchGetItem hands unprocessed keys back as they were asked for: with AttributesToGet."""
    if operation != "BatchGetItem":
        return answer
    for table, entry in answer.get("UnprocessedKeys", {}).items():
        asked = params["RequestItems"].get(table, {})
        if "AttributesToGet" in asked:
            entry.pop("ProjectionExpression", None)
            entry.pop("ExpressionAttributeNames", None)
            entry["AttributesToGet"] = list(asked["AttributesToGet"])
    return answer
