"""DynamoDB's own words for the refusals the gateway and the boto3 facade make themselves.

Where the gateway (codec, input rules, batches) or the facade (its checks before sending)
refuses a request that DynamoDB would refuse too, the text comes from this one table, so
a boto3 caller reads what DynamoDB writes and the gateway's own callers read the same
words. Shared by the server and the client like taxonomy.py: pure data and small
formatting functions; must not import grpc, botocore or the server.

Each text was checked against what DynamoDB is known to answer; the sources are named
where they disagree or where DynamoDB's text is hard to guess:
- [moto] moto 5.2's texts and its tests marked aws_verified (run against DynamoDB);
- [dynalite] dynalite 4's validations (tools/node_modules/dynalite), written from
  DynamoDB's answers of its time, before DynamoDB began enveloping some messages;
- [captures] the published captures of DynamoDB's answers in public conformance suites
  (2026, several regions), which also show where DynamoDB words a refusal differently
  in different regions while it rolls out a change; the text here is the one most
  regions give.

The envelope: DynamoDB puts "1 validation error detected: " before the messages of its
request validation in some operations and not in others, family by family (see
ENVELOPED). The facade applies it where DynamoDB does; the gateway, which knows the
operation only at some checks, applies it where it knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# ---------------------------------------------------------------- the validation framework's forms

ONE_ERROR = "1 validation error detected: "


def validation_errors(errors: Sequence[str]) -> str:
    """DynamoDB's list of constraint failures: "2 validation errors detected: a; b"."""
    plural = "s" if len(errors) > 1 else ""
    return f"{len(errors)} validation error{plural} detected: " + "; ".join(errors)


def enveloped(text: str) -> str:
    return ONE_ERROR + text


# DynamoDB quotes a value of any length; past this many characters the quote here is cut
# (marked "..."): the gateway's status carries the message three times (status message,
# ErrorInfo, BadRequest) in a trailer gRPC limits to 8 KB by default. Names DynamoDB can
# have (255 characters, ARNs 1,024) are always quoted whole.
MAX_QUOTED = 1024


def quoted(value: object) -> str:
    """How a constraint message shows the value: 'text', or null for a missing one."""
    if value is None:
        return "null"
    text = str(value)
    return f"'{text[:MAX_QUOTED]}...'" if len(text) > MAX_QUOTED else f"'{text}'"


def constraint(path: str, rule: str, value: object = None, *, show_value: bool = True) -> str:
    """One constraint failure: "Value '0' at 'limit' failed to satisfy constraint: <rule>".

    `path` is the member as DynamoDB names it (lowerCamel, list members as
    "transactItems.1.member.put.tableName"); show_value=False gives the form without a
    value ("Value at '...'"), which DynamoDB uses for some list lengths.
    """
    shown = f"Value {quoted(value)} at" if show_value else "Value at"
    return f"{shown} '{path}' failed to satisfy constraint: {rule}"


MUST_NOT_BE_NULL = "Member must not be null"


def min_value(bound: int) -> str:
    return f"Member must have value greater than or equal to {bound}"


def max_value(bound: int) -> str:
    return f"Member must have value less than or equal to {bound}"


def min_length(bound: int) -> str:
    return f"Member must have length greater than or equal to {bound}"


def max_length(bound: int) -> str:
    return f"Member must have length less than or equal to {bound}"


def pattern(regex: str) -> str:
    return f"Member must satisfy regular expression pattern: {regex}"


def enum(values: Iterable[str]) -> str:
    return f"Member must satisfy enum value set: [{', '.join(values)}]"


def camel(name: str) -> str:
    """A member's name as constraint messages spell it (ReturnValues -> returnValues)."""
    return name[:1].lower() + name[1:]


# DynamoDB quotes a whole list or map of the request in some constraint messages, as Java's
# toString of its model objects: every member with every attribute value (in one cohort of
# regions; another names only the member, see the captures). These texts keep the brackets
# and braces of that quote but elide the members themselves, naming only how many there
# are: the message stays short enough for a gRPC status trailer (8 KB by default) whatever
# the request, and it never repeats the caller's data. Callers that match DynamoDB's
# message by its shape ("Value '[...]' at 'transactItems' ...") match this one too.


def elided_list(count: int, member: str) -> str:
    """`[... 101 TransactWriteItem ...]`: a quoted list of `count` members, elided."""
    return "[]" if count == 0 else f"[... {count} {member} ...]"


def elided_map(entries: Iterable[tuple[str, str]]) -> str:
    """`{orders=[... 26 WriteRequest ...], users=[]}`: a quoted map, keys as written."""
    return "{" + ", ".join(f"{key}={value}" for key, value in entries) + "}"


# ---------------------------------------------------------------- table names

TABLE_NAME_PATTERN = "[a-zA-Z0-9_.-]+"
TABLE_NAME_MIN = 3
TABLE_NAME_MAX = 255
_TABLE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def table_name_rules(name: str) -> list[str]:
    """The rules a table name breaks, in the order DynamoDB lists them (pattern, then length)."""
    broken = []
    if not name or not set(name) <= _TABLE_NAME_CHARACTERS:
        broken.append(pattern(TABLE_NAME_PATTERN))
    if len(name) < TABLE_NAME_MIN:
        broken.append(min_length(TABLE_NAME_MIN))
    if len(name) > TABLE_NAME_MAX:
        broken.append(max_length(TABLE_NAME_MAX))
    return broken


def table_name(name: str, path: str = "tableName") -> str | None:
    """DynamoDB's refusal of a TableName (at `path`), or None when it is a valid name.

    [dynalite] and [captures]: "1 validation error detected: Value 'bad table!@#' at
    'tableName' failed to satisfy constraint: Member must satisfy regular expression
    pattern: [a-zA-Z0-9_.-]+"; "" breaks the pattern and the length (2 errors).
    Inside a transaction the path names the action: 'transactItems.1.member.put.tableName'.
    """
    broken = table_name_rules(name)
    if not broken:
        return None
    return validation_errors([constraint(path, rule, name) for rule in broken])


# The three rules of a table name as a map-keys constraint lists them, whichever is broken.
_TABLE_NAME_KEY_RULES = (max_length(TABLE_NAME_MAX), min_length(TABLE_NAME_MIN), pattern(TABLE_NAME_PATTERN))


def request_items(operation: str, counts: Iterable[tuple[str, int]]) -> str:
    """A batch's RequestItems as constraint messages quote it (elided): each table with its
    number of writes (`{orders=[... 26 WriteRequest ...]}`) or keys (`{orders={Keys=[... 3 Key
    ...]}}`), tables in name order (DynamoDB's own order is its hash map's)."""
    ordered = sorted(counts)
    if operation == "BatchWriteItem":
        return elided_map((table, elided_list(count, "WriteRequest")) for table, count in ordered)
    return elided_map((table, "{Keys=" + elided_list(count, "Key") + "}") for table, count in ordered)


def batch_table_names(request_items: str) -> str:
    """A BatchGetItem/BatchWriteItem naming a table DynamoDB cannot have. [dynalite], with
    the request quoted as request_items() writes it."""
    rule = f"Map keys must satisfy constraint: [{', '.join(_TABLE_NAME_KEY_RULES)}]"
    return validation_errors([constraint("requestItems", rule, request_items)])


# ---------------------------------------------------------------- attribute values
# [dynalite] and [moto]; the two spaces in "An string set  may" are DynamoDB's.

NOT_A_NUMBER = "The parameter cannot be converted to a numeric value"
NUMBER_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
NUMBER_UNDERFLOW = (
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"
)
NUMBER_TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
NULL_NOT_TRUE = (
    "One or more parameter values were invalid: Null attribute value types must have the value of true"
)
EMPTY_STRING_SET = "One or more parameter values were invalid: An string set  may not be empty"
EMPTY_NUMBER_SET = "One or more parameter values were invalid: An number set  may not be empty"
EMPTY_BINARY_SET = "One or more parameter values were invalid: Binary sets should not be empty"
EMPTY_SETS = {"SS": EMPTY_STRING_SET, "NS": EMPTY_NUMBER_SET, "BS": EMPTY_BINARY_SET}
NUMBER_SET_DUPLICATES = "Input collection contains duplicates"
EMPTY_VALUE = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
TWO_TYPES = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
# [captures] (eu-west-2; the DynamoDB API reference lists the first clause).
NESTING_TOO_DEEP = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"


def not_a_number(text: str) -> str:
    return f"{NOT_A_NUMBER}: {text}" if text else NOT_A_NUMBER


def _listing(members: Iterable[object]) -> str:
    return "[" + ", ".join(str(m) for m in members) + "]"


def string_set_duplicates(members: Iterable[str]) -> str:
    return f"One or more parameter values were invalid: Input collection {_listing(members)} contains duplicates."


def binary_set_duplicates(members_base64: Iterable[str]) -> str:
    """Members as base64 (the JSON DynamoDB read); "]of" without a space is DynamoDB's."""
    return (
        f"One or more parameter values were invalid: Input collection {_listing(members_base64)}of type BS "
        "contains duplicates."
    )


# ---------------------------------------------------------------- keys and items

KEY_MISMATCH = "The provided key element does not match the schema"
# [moto] (aws_verified), [dynalite]: "of2048" without a space is DynamoDB's.
HASH_KEY_TOO_LONG = "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
RANGE_KEY_TOO_LONG = (
    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit "
    "of 1024 bytes"
)
ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"


# ---------------------------------------------------------------- expressions

EMPTY_NAMES = "ExpressionAttributeNames must not be empty"
EMPTY_VALUES = "ExpressionAttributeValues must not be empty"
KEY_CONDITION_REQUIRED = (
    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
)


def empty_expression(parameter: str) -> str:
    """[dynalite], [moto]: "Invalid UpdateExpression: The expression can not be empty;"."""
    return f"Invalid {parameter}: The expression can not be empty;"


def expression_too_long(parameter: str, size: int) -> str:
    """[captures]: an expression over 4 KB (its UTF-8 bytes)."""
    return (
        f"Invalid {parameter}: Expression size has exceeded the maximum allowed size; expression size: {size}"
    )


# ---------------------------------------------------------------- reads

SEGMENT_WITHOUT_TOTAL = "The TotalSegments parameter is required but was not present in the request when Segment parameter is present"
TOTAL_WITHOUT_SEGMENT = "The Segment parameter is required but was not present in the request when parameter TotalSegments is present"


def segment_not_below_total(segment: int, total: int) -> str:
    return (
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        f"Segment: {segment} is not less than TotalSegments: {total}"
    )


# ---------------------------------------------------------------- batches

MAX_BATCH_WRITES = 25
MAX_BATCH_KEYS = 100
DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
WRITE_REQUEST_EMPTY = "1 validation error detected: WriteRequest must have one of PutRequest or DeleteRequest"


def too_many_requested(operation: str) -> str:
    """More than 25 writes (100 keys) in all, none of its tables over the limit. [moto], [dynalite]."""
    return f"Too many items requested for the {operation} call"


def request_items_required(operation: str) -> str:
    """An empty RequestItems. [captures]."""
    return f"The requestItems parameter is required for {operation}"


def batch_write_lists(request_items: str) -> str:
    """A table with more than 25 writes (or none) in a BatchWriteItem: the length constraint
    on requestItems' members, the request quoted as request_items() writes it. [dynalite],
    [captures] (`1 validation error detected: Value '{<table>=[...]}' at 'requestItems'
    failed to satisfy constraint: Map value must satisfy constraint: [...]`)."""
    rule = f"Map value must satisfy constraint: [{max_length(MAX_BATCH_WRITES)}, {min_length(1)}]"
    return validation_errors([constraint("requestItems", rule, request_items)])


def batch_get_keys(table: str) -> str:
    """A table with more than 100 keys in a BatchGetItem. [captures] (moto writes the path in
    lowerCamel; DynamoDB names these members as the API does)."""
    return validation_errors(
        [constraint(f"RequestItems.{table}.member.Keys", max_length(MAX_BATCH_KEYS), show_value=False)]
    )


# ---------------------------------------------------------------- transactions

MAX_TRANSACTION_ACTIONS = 100
TRANSACT_ITEM_EMPTY = (
    "1 validation error detected: TransactWriteItem must have one of ConditionCheck, Put, Update or Delete"
)
TRANSACT_ITEM_TWO_ACTIONS = "TransactItems can only contain one of Check, Put, Update or Delete"


def transaction_size(count: int, member: str) -> str:
    """No actions, or more than 100, in TransactWriteItems (member "TransactWriteItem") or
    TransactGetItems ("TransactGetItem"). [captures]: DynamoDB quotes the actions; here they
    are elided (see elided_list)."""
    rule = min_length(1) if count == 0 else max_length(MAX_TRANSACTION_ACTIONS)
    return validation_errors([constraint("transactItems", rule, elided_list(count, member))])


# ---------------------------------------------------------------- numbers of the request itself


def below_minimum(path: str, value: int, bound: int) -> str:
    """[dynalite]: "1 validation error detected: Value '0' at 'limit' failed to satisfy
    constraint: Member must have value greater than or equal to 1"."""
    return validation_errors([constraint(path, min_value(bound), value)])


def above_maximum(path: str, value: int, bound: int) -> str:
    return validation_errors([constraint(path, max_value(bound), value)])


# ---------------------------------------------------------------- the envelope, family by family

# Family -> the operations that put "1 validation error detected: " before its message.
# Elsewhere the message is bare.
ENVELOPED: dict[str, frozenset[str]] = {
    # An empty set in PutItem's Item. [moto] (aws_verified test_put_item_empty_set).
    # dynalite predates the envelope; keys and batch items stay bare [captures].
    "empty_set_in_item": frozenset({"PutItem"}),
    # An empty set among ExpressionAttributeValues, without dynalite's older
    # "ExpressionAttributeValues contains invalid value: ... for key :v" wrapper.
    # [moto] (aws_verified test_update_item_add_empty_set; the same check for the others).
    "empty_set_in_values": frozenset({"PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}),
    # ExpressionAttributeValues={}. [moto] (aws_verified test_update_item_with_empty_values);
    # bare in transactions, as moto notes of DynamoDB.
    "empty_values": frozenset({"PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}),
    # UpdateExpression="". [moto] (aws_verified test_update_item_with_empty_expression).
    "empty_update_expression": frozenset({"UpdateItem"}),
    # An expression over 4 KB. [captures]: enveloped in PutItem and UpdateItem, bare in
    # GetItem, Query and Scan.
    "expression_too_long": frozenset({"PutItem", "UpdateItem"}),
}


def in_envelope(family: str, operation: str, text: str) -> str:
    """`text` as `operation` words it: enveloped where DynamoDB envelopes this family."""
    return enveloped(text) if operation in ENVELOPED[family] else text


# ---------------------------------------------------------------- before validation: the JSON itself
# SerializationException: what DynamoDB's JSON reader says of a value of the wrong type,
# before any constraint is looked at. [captures] of the same framework (AWS JSON 1.0/1.1
# services answer alike): "STRING_VALUE can not be converted to an Integer", "NUMBER_VALUE
# can not be converted to a String", "Start of list found where not expected".

START_OF_LIST = "Start of list found where not expected"
START_OF_MAP = "Start of structure or map found where not expected."
EXPECTED_LIST = "Expected list or null"
EXPECTED_STRUCTURE = "Expected null"
NOT_BASE64 = "only base-64-encoded strings are convertible to bytes"  # [dynalite]
_ARTICLES = {"Integer": "an", "Boolean": "a", "String": "a", "Long": "a"}


def cannot_convert(token: str, target: str) -> str:
    """`token` is the JSON value's kind: STRING_VALUE, NUMBER_VALUE, DECIMAL_VALUE,
    TRUE_VALUE, FALSE_VALUE; `target` the type DynamoDB expected (Integer, String, Boolean)."""
    # One capture reads "STRING_VALUE can not be converted to an Boolean"; the others "a Boolean".
    article = "an" if token == "STRING_VALUE" and target == "Boolean" else _ARTICLES.get(target, "a")
    return f"{token} can not be converted to {article} {target}"
