"""The gateway's own AWS credentials for the aws backend: the standard chain, a profile, or a role.

- Nothing configured: botocore's standard chain (environment keys, shared
  profile, container or instance role, web identity from AWS_* variables).
- aws_profile: that profile of the shared config and credentials files.
- aws_role_arn: AssumeRole with the chain's credentials (session name, external
  id, duration), or, with aws_web_identity_token_file, AssumeRoleWithWebIdentity
  with the token in that file (IRSA), read again at every refresh because the
  kubelet rotates it. Temporary credentials are refreshed aws_credentials_refresh_s
  before they expire (botocore's advisory window); if STS fails then, calls keep
  the old ones and try again, until the last minute, when calls fail with
  Authentication.AssumeRoleFailed.
prepare_credentials() resolves them when the backend starts, so a gateway
without usable credentials stops at startup with a message saying what to set,
never at the first request. Every secret fetched is registered with the log
redactor, and STS response bodies are scrubbed from botocore's TRACE logs.
Must not import gRPC.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import get_session
from botocore import UNSIGNED
from botocore import exceptions as botocore_errors
from botocore.credentials import CredentialProvider

from ..config import Settings
from ..observability.secrets import SECRETS, SecretString
from .files import read_file

log = logging.getLogger(__name__)

# Below this, a failed refresh stops calls instead of letting them go on with the old credentials.
MANDATORY_REFRESH_S = 60


class AwsCredentialsError(RuntimeError):
    """The gateway has no usable AWS credentials; the message says which source failed and why."""


@dataclass(frozen=True)
class RoleOptions:
    role_arn: str
    session_name: str
    duration_s: int
    refresh_s: int
    region: str
    external_id: SecretString | None = None
    web_identity_token_file: str | None = None
    sts_endpoint_url: str | None = None
    # Tests move time forward with it instead of waiting for expiry.
    clock: Callable[[], datetime.datetime] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CredentialOptions:
    profile: str | None = None
    role: RoleOptions | None = None


def credential_options(settings: Settings) -> CredentialOptions:
    role = None
    if settings.aws_role_arn:
        role = RoleOptions(
            role_arn=settings.aws_role_arn,
            session_name=settings.aws_role_session_name,
            duration_s=settings.aws_role_duration_s,
            refresh_s=settings.aws_credentials_refresh_s,
            region=settings.region,
            external_id=SecretString(settings.aws_role_external_id)
            if settings.aws_role_external_id
            else None,
            web_identity_token_file=settings.aws_web_identity_token_file,
            sts_endpoint_url=settings.aws_sts_endpoint_url,
        )
    return CredentialOptions(profile=settings.aws_profile, role=role)


# ---------------------------------------------------------------- temporary credentials from STS


class RoleCredentials:
    """Fetches (and refetches) a role's temporary credentials from STS."""

    def __init__(self, sts: Any, options: RoleOptions) -> None:
        self._sts = sts
        self.options = options
        self.fetches = 0
        # The secrets of the last two sets stay registered: the older may still sign a call in flight.
        self._registered: list[tuple[str, ...]] = []

    @property
    def method(self) -> str:
        return "assume-role-with-web-identity" if self.options.web_identity_token_file else "assume-role"

    async def fetch(self) -> dict[str, str]:
        """botocore's refresh callback: the metadata of a new set of credentials."""
        options = self.options
        params: dict[str, Any] = {
            "RoleArn": options.role_arn,
            "RoleSessionName": options.session_name,
            "DurationSeconds": options.duration_s,
        }
        try:
            if options.web_identity_token_file:
                token = read_file(options.web_identity_token_file, "web identity token file").decode().strip()
                _register(token)  # botocore logs the request body (where the token is) at TRACE
                response = await self._sts.assume_role_with_web_identity(WebIdentityToken=token, **params)
            else:
                if options.external_id:
                    params["ExternalId"] = options.external_id.reveal()
                response = await self._sts.assume_role(**params)
        except botocore_errors.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise AwsCredentialsError(f"{self._call()} of {options.role_arn} failed: {code}") from None
        except botocore_errors.NoCredentialsError:
            raise AwsCredentialsError(
                f"AssumeRole of {options.role_arn} needs credentials to call STS with, and the standard"
                " chain found none (environment, profile, container or instance role)"
            ) from None
        except (botocore_errors.BotoCoreError, OSError) as error:
            raise AwsCredentialsError(
                f"{self._call()} of {options.role_arn} failed: STS could not be reached ({type(error).__name__})"
            ) from None
        credentials = response["Credentials"]
        secrets = (credentials["SecretAccessKey"], credentials["SessionToken"], credentials["AccessKeyId"])
        for secret in secrets:
            _register(secret)
        self._registered.append(secrets)
        while len(self._registered) > 2:
            for stale in self._registered.pop(0):
                SECRETS.forget(stale)
        self.fetches += 1
        expiration = credentials["Expiration"]
        log.info(
            "assumed the gateway's AWS role",
            extra={"role_arn": options.role_arn, "method": self.method, "expires": str(expiration)},
        )
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat() if hasattr(expiration, "isoformat") else str(expiration),
        }

    def _call(self) -> str:
        return "AssumeRoleWithWebIdentity" if self.options.web_identity_token_file else "AssumeRole"

    async def credentials(self) -> AioRefreshableCredentials:
        """The first set, fetched now (so a role that cannot be assumed stops startup), refreshed later."""
        metadata = await self.fetch()
        extra = {"time_fetcher": self.options.clock} if self.options.clock else {}
        return AioRefreshableCredentials(
            access_key=metadata["access_key"],
            secret_key=metadata["secret_key"],
            token=metadata["token"],
            expiry_time=datetime.datetime.fromisoformat(metadata["expiry_time"]),
            refresh_using=self.fetch,
            method=self.method,
            advisory_timeout=self.options.refresh_s,
            mandatory_timeout=min(MANDATORY_REFRESH_S, self.options.refresh_s),
            **extra,
        )


class _FixedProvider(CredentialProvider):
    """Hands the session the role's refreshable credentials, ahead of the standard chain."""

    METHOD = "dynamo-gateway-role"
    CANONICAL_NAME = "DynamoGatewayRole"

    def __init__(self, credentials: AioRefreshableCredentials) -> None:
        self._credentials = credentials

    async def load(self) -> AioRefreshableCredentials:
        return self._credentials


def _register(secret: str) -> None:
    SECRETS.register(secret)
    encoded = urllib.parse.quote(secret, safe="")
    if encoded != secret:
        SECRETS.register(encoded)  # as it appears in a form-encoded STS request body


# ---------------------------------------------------------------- startup


async def credentialed_session(
    static: tuple[str, str] | None, options: CredentialOptions | None, exit_stack: contextlib.AsyncExitStack
) -> tuple[Any, RoleCredentials | None]:
    """A botocore session with fixed keys (local emulators), or with the chain, profile or role of
    `options` proven now, so a gateway without credentials stops at startup, not at its first call."""
    session = get_session()
    if static:
        session.set_credentials(*static)
        return session, None
    return session, await prepare_credentials(session, options or CredentialOptions(), exit_stack)


async def prepare_credentials(
    session: Any, options: CredentialOptions, exit_stack: contextlib.AsyncExitStack
) -> RoleCredentials | None:
    """Sets the session's credentials up and proves they can be had; raises AwsCredentialsError otherwise.

    The STS client (for a role) is entered into exit_stack, so it lives as long as the backend.
    """
    if options.profile:
        session.set_config_variable("profile", options.profile)
    role = None
    if options.role is not None:
        install_sts_log_filter()
        if options.role.external_id:
            _register(options.role.external_id.reveal())
        role = await _role_credentials(options, exit_stack)
        resolver = session.get_component("credential_provider")
        resolver.insert_before(resolver.providers[0].METHOD, _FixedProvider(await role.credentials()))
    try:
        credentials = await session.get_credentials()
        # Deferred sources (container, instance, web identity variables) fetch only when asked: ask now.
        frozen = None if credentials is None else await credentials.get_frozen_credentials()
    except botocore_errors.ProfileNotFound:
        raise AwsCredentialsError(
            f"the AWS profile {options.profile!r} is not in the shared config files"
        ) from None
    except (botocore_errors.BotoCoreError, OSError) as error:
        raise AwsCredentialsError(
            f"the aws backend's AWS credentials could not be loaded ({type(error).__name__})"
        ) from None
    if frozen is None or not frozen.access_key:
        raise AwsCredentialsError(
            "the aws backend found no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or --aws-profile, a role with --aws-role-arn (and --aws-web-identity-token-file "
            "for web identity), or run with a container or instance role"
        )
    for secret in (frozen.secret_key, frozen.token):
        if secret:
            SECRETS.register(secret)
    log.info("AWS credentials found", extra={"source": getattr(credentials, "method", "unknown")})
    return role


async def _role_credentials(
    options: CredentialOptions, exit_stack: contextlib.AsyncExitStack
) -> RoleCredentials:
    from aiobotocore.session import get_session  # the STS client gets a session of its own

    role = options.role
    assert role is not None
    source = get_session()
    if options.profile:
        source.set_config_variable("profile", options.profile)
    config = AioConfig(region_name=role.region, retries={"mode": "standard", "total_max_attempts": 3})
    if role.web_identity_token_file:
        # AssumeRoleWithWebIdentity is not signed: the token is the credential.
        config = config.merge(AioConfig(signature_version=UNSIGNED))
    sts = await exit_stack.enter_async_context(
        source.create_client("sts", endpoint_url=role.sts_endpoint_url, config=config)
    )
    return RoleCredentials(sts, role)


# ---------------------------------------------------------------- logs

_STS_SECRET_ELEMENTS = re.compile(r"<(SecretAccessKey|SessionToken)>[^<]*</\1>")


class _StsBodyFilter(logging.Filter):
    """botocore logs response bodies at TRACE before the gateway sees (and registers) the secrets in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        if "SecretAccessKey" in text or "SessionToken" in text:
            record.msg = _STS_SECRET_ELEMENTS.sub(r"<\1>***</\1>", text)
            record.args = ()
        return True


_STS_FILTER = _StsBodyFilter()


def install_sts_log_filter() -> None:
    for name in ("botocore.parsers", "aiobotocore.parsers"):
        logger = logging.getLogger(name)
        if _STS_FILTER not in logger.filters:
            logger.addFilter(_STS_FILTER)
