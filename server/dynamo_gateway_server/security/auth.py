"""Caller authentication: static bearer tokens (stored hashed), JWTs checked against a JWKS, mTLS names.

Authenticator.authenticate() turns what a call carries (its metadata and the
names of its verified client certificate) into an Identity, or raises
Unauthenticated naming what failed (never the credential itself). A bearer
token, when present, decides: a wrong one is refused even on an mTLS connection.
Static tokens are kept as SHA-256 digests only: they are long random strings,
not passwords, so one fast hash is enough and a stolen tokens file grants
nothing. JWTs must be signed (JWS, asymmetric algorithms only), unexpired, from
the configured issuer and for one of the configured audiences; Kubernetes
service-account tokens are such JWTs. Owns no transport: must not import gRPC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from .files import SecurityConfigError, WatchedFile, first_line
from .identity import ANONYMOUS, Identity

AUTHORIZATION = "authorization"
_BEARER = re.compile(r"bearer +(\S+)", re.IGNORECASE)
TOKEN_NAME = re.compile(r"[A-Za-z0-9._:@/+-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Far above any real JWT (Kubernetes tokens are about 1 KB); parsing stays cheap for garbage.
MAX_TOKEN_CHARS = 16 * 1024
# Asymmetric key types only: with a shared secret in a JWKS, anyone who can read the file could mint tokens.
_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class Unauthenticated(Exception):
    """The call has no acceptable credentials. `failure` is a short fixed word for logs and ErrorInfo."""

    def __init__(self, failure: str, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- static tokens


@dataclass(frozen=True)
class TokenTable:
    by_digest: Mapping[str, str]
    """SHA-256 hex digest of a token -> the caller's name."""


def parse_tokens(data: bytes, path: str = "") -> TokenTable:
    where = f"tokens file {path}".rstrip()
    try:
        document = yaml.safe_load(data) or {}
    except yaml.YAMLError as error:
        raise SecurityConfigError(f"{where}: not YAML ({first_line(error)})") from None
    entries = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SecurityConfigError(f"{where}: expected a mapping with a list `tokens`")
    by_digest: dict[str, str] = {}
    for index, entry in enumerate(entries):
        field = f"{where}: tokens[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "sha256"}:
            raise SecurityConfigError(f"{field}: expected exactly `name` and `sha256`")
        name, digest = str(entry["name"]), str(entry["sha256"]).lower()
        if not TOKEN_NAME.fullmatch(name):
            raise SecurityConfigError(f"{field}.name: 1-128 of A-Z a-z 0-9 . _ : @ / + -")
        if not _SHA256.fullmatch(digest):
            raise SecurityConfigError(
                f"{field}.sha256: 64 hex digits (the SHA-256 of the token, not the token)"
            )
        if digest in by_digest:
            raise SecurityConfigError(f"{field}: the same token as {by_digest[digest]!r}")
        if name in by_digest.values():
            raise SecurityConfigError(f"{field}.name: {name!r} is listed twice")
        by_digest[digest] = name
    return TokenTable(by_digest)


def _check_static(table: TokenTable, token: str) -> Identity | None:
    digest = token_digest(token)
    for known, name in table.by_digest.items():
        # Compare against every entry in constant time, so response times say nothing about digests.
        if hmac.compare_digest(known, digest):
            return Identity(f"token:{name}", (f"token:{name}",), "token")
    return None


# ---------------------------------------------------------------- JWT


def parse_jwks(data: bytes, path: str = "") -> KeySet:
    where = f"JWKS file {path}".rstrip()
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise SecurityConfigError(f"{where}: not JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise SecurityConfigError(f"{where}: not JSON (not UTF-8 text)") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise SecurityConfigError(f'{where}: expected {{"keys": [...]}} with at least one key')
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            raise SecurityConfigError(f"{where}: keys[{index}]: kty must be one of {sorted(_KEY_TYPES)}")
        if "d" in key:
            # A private key has no business on a verifier; refusing it keeps it out of memory and logs.
            raise SecurityConfigError(f"{where}: keys[{index}] is a private key; publish only public keys")
    try:
        return KeySet.import_key_set({"keys": keys})
    except (jose_errors.JoseError, ValueError, TypeError) as error:
        raise SecurityConfigError(f"{where}: a key cannot be used ({type(error).__name__})") from None


@dataclass(frozen=True)
class JwtRules:
    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    leeway_s: int


class JwtVerifier:
    """Verifies bearer JWTs against the keys of a (watched) JWKS file."""

    def __init__(
        self, keys: WatchedFile[KeySet], rules: JwtRules, now: Callable[[], int] | None = None
    ) -> None:
        self.keys = keys
        self._algorithms = list(rules.algorithms)
        # Fixed by the rules; `now` is asked on each validation, so one registry serves every token.
        self._claims = jwt.JWTClaimsRegistry(
            now=now,
            leeway=rules.leeway_s,
            iss={"essential": True, "value": rules.issuer},
            aud={"essential": True, "values": list(rules.audiences)},
            exp={"essential": True},
            sub={"essential": True},
        )

    def verify(self, token: str) -> Identity:
        if token.count(".") != 2:
            raise Unauthenticated("malformed", "the bearer token is neither a known token nor a signed JWT")
        try:
            decoded = jwt.decode(token, self.keys.value, algorithms=self._algorithms)
        except jose_errors.UnsupportedAlgorithmError:
            raise Unauthenticated(
                "algorithm", "the bearer JWT is signed with an algorithm not accepted"
            ) from None
        except jose_errors.BadSignatureError:
            raise Unauthenticated("signature", "the bearer JWT's signature does not verify") from None
        except (jose_errors.JoseError, ValueError, TypeError, KeyError) as error:
            # Unknown key id, bad encoding, a JWE: nothing of the token is echoed back.
            raise Unauthenticated(
                "malformed", f"the bearer JWT cannot be verified ({type(error).__name__})"
            ) from None
        claims = decoded.claims
        try:
            self._claims.validate(claims)
        except jose_errors.ExpiredTokenError:
            raise Unauthenticated("expired", "the bearer JWT has expired") from None
        except jose_errors.MissingClaimError as error:
            raise Unauthenticated("claims", f"the bearer JWT lacks the claim {error.claim}") from None
        except jose_errors.ClaimError as error:
            failure = _CLAIM_FAILURES.get(error.claim, "claims")
            raise Unauthenticated(failure, f"the bearer JWT's {error.claim} claim is not accepted") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("claims", "the bearer JWT's sub is not a string")
        return Identity(f"jwt:{subject}", (f"jwt:{subject}",), "jwt")


# Claim -> the `failure` word reported for it; the claim names are the JWT's own (not secret).
_CLAIM_FAILURES = {"iss": "issuer", "aud": "audience", "nbf": "not_yet_valid", "iat": "not_yet_valid"}


# ---------------------------------------------------------------- the authenticator


class Authenticator:
    """Every way a caller may prove who it is; `required` once any of them is configured."""

    def __init__(
        self,
        tokens: WatchedFile[TokenTable] | None = None,
        jwts: JwtVerifier | None = None,
        mtls: bool = False,
    ) -> None:
        self.tokens = tokens
        self.jwts = jwts
        self.mtls = mtls
        self.required = bool(tokens or jwts or mtls)

    def authenticate(self, metadata: Iterable[tuple[str, Any]], peer_names: tuple[str, ...] = ()) -> Identity:
        if not self.required:
            return ANONYMOUS
        values = [value for key, value in metadata if key.lower() == AUTHORIZATION]
        if len(values) > 1:
            raise Unauthenticated("malformed", "send one authorization metadata entry, not several")
        if values:
            return self._bearer(values[0])
        if peer_names:
            return Identity(peer_names[0], peer_names, "mtls")
        ways = [
            way
            for way, on in (("a bearer token", self.tokens or self.jwts), ("a client certificate", self.mtls))
            if on
        ]
        raise Unauthenticated("missing", f"this gateway needs {' or '.join(ways)}")

    def _bearer(self, value: Any) -> Identity:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        match = _BEARER.fullmatch(text.strip())
        if match is None:
            raise Unauthenticated("malformed", "the authorization metadata must be `Bearer <token>`")
        token = match.group(1)
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("malformed", "the bearer token is too long")
        if self.tokens is not None and (identity := _check_static(self.tokens.value, token)) is not None:
            return identity
        if self.jwts is not None:
            return self.jwts.verify(token)
        raise Unauthenticated("unknown_token", "the bearer token is not valid")
