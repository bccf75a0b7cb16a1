"""Composite keys such as ``USER#42`` for callers who build keys themselves (without entities).

The rule, identical in every language (README "Composite keys without entities"):

- the separator is one character (default ``#``), never the escape character ``\\``;
- in each part, every ``\\`` becomes ``\\\\``, then every separator becomes a backslash and the
  separator (``\\#``): backslashes first, so the escapes just added are not escaped again;
- a key is its escaped parts joined by the separator; a prefix for ``begins_with`` is the key of
  the leading parts followed by one more separator.

``composite_key("USER", "a#b")`` is ``USER#a\\#b``; ``parse_key`` reads it back as
``["USER", "a#b"]``.

Why escape rather than refuse, as entity templates do: the gateway owns an entity's values and
can insist on them, whereas a caller building keys from emails, paths or user input must be able
to store any text. Why a backslash before the character rather than percent-encoding:

- each character is escaped on its own, so the escape of a text's prefix is a prefix of its
  escape: ``begins_with`` on a prefix built here finds exactly the keys that start with those
  parts (and a partial last part, ``composite_key("ORDER", "2024-")``, works too);
- it works for any one-character separator (percent-encoding breaks when the separator is a hex
  digit or ``%``, and a non-ASCII one needs its UTF-8 bytes in hex);
- text without ``\\`` or the separator is unchanged, so these keys equal hand-built ones
  (``USER#42``), and building one is two replace-alls in any language.

The cost: JSON shows the backslash doubled (``"USER#a\\\\#b"``), and keys sort as their parts do
only where no part needed escaping (see `composite_key`). Entity templates do not escape, so for
an entity's keys ask the gateway (write or read by entity) rather than rebuild them here: a value
with a backslash would build a different key. Pure: no gRPC.
"""

from __future__ import annotations

ESCAPE = "\\"
DEFAULT_SEPARATOR = "#"


def composite_key(*parts: str, separator: str = DEFAULT_SEPARATOR) -> str:
    """The key of `parts`: each escaped, joined by `separator`.

    Keys that share all parts but the last sort as their last parts do (by code point, which is
    DynamoDB's UTF-8 byte order) when neither last part holds a backslash or the separator, so a
    range condition (``BETWEEN``, ``<``) over the last part works on such keys. Earlier parts do
    not order keys the way a tuple would: the separator sorts after some characters.
    """
    _check_separator(separator)
    _check_parts(parts)
    return separator.join(_escape(part, separator) for part in parts)


def key_prefix(*parts: str, separator: str = DEFAULT_SEPARATOR) -> str:
    """The prefix for ``begins_with`` of the keys whose leading parts are `parts`.

    It ends with the separator so ``USER#1`` does not match ``USER#10``; a key made of exactly
    `parts` (no part after them) is not matched: compare it with `composite_key` instead.
    """
    return composite_key(*parts, separator=separator) + separator


def parse_key(key: str, separator: str = DEFAULT_SEPARATOR) -> list[str]:
    """The parts of a key built by `composite_key` with the same separator.

    Refuses a backslash followed by anything but a backslash or the separator, or ending the key:
    `composite_key` never writes one, and accepting it would let two texts parse to the same parts
    (then keys equal as parts would differ as DynamoDB keys).
    """
    _check_separator(separator)
    if not isinstance(key, str):
        raise TypeError(f"a key is text, got {type(key).__name__} {key!r}")
    parts: list[str] = []
    current: list[str] = []
    after_escape = False
    for position, char in enumerate(key):
        if after_escape:
            if char not in (ESCAPE, separator):
                raise ValueError(
                    f"{key!r} is not a composite key: the backslash at {position - 1} escapes {char!r}, "
                    f"but only a backslash or the separator {separator!r} is ever escaped"
                )
            current.append(char)
            after_escape = False
        elif char == ESCAPE:
            after_escape = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if after_escape:
        raise ValueError(
            f"{key!r} is not a composite key: it ends with an unfinished escape (a lone backslash)"
        )
    parts.append("".join(current))
    return parts


def _escape(part: str, separator: str) -> str:
    return part.replace(ESCAPE, ESCAPE + ESCAPE).replace(separator, ESCAPE + separator)


def _check_separator(separator: str) -> None:
    if not isinstance(separator, str) or len(separator) != 1:
        raise ValueError(f"the separator is one character, got {separator!r}")
    if separator == ESCAPE:
        raise ValueError("the separator cannot be a backslash: that is the escape character")


def _check_parts(parts: tuple[str, ...]) -> None:
    # Zero parts would build "", which parses back as one empty part.
    if not parts:
        raise ValueError("a composite key needs at least one part")
    for index, part in enumerate(parts):
        if not isinstance(part, str):
            # Not str(part): numbers as text sort "10" before "9", so the caller should choose.
            raise TypeError(
                f"part {index} is {type(part).__name__} {part!r}: pass text, e.g. str(n), "
                "zero-padded (f'{n:010d}') if keys should sort by number"
            )
