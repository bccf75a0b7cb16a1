"""What a failure means, read from its taxonomy leaf: retryable, bad for the breaker, its metric label."""

from __future__ import annotations

import asyncio

import pytest

from dynamo_gateway_server import failures
from dynamo_gateway_server.backends import BackendError, BackendUnavailableError, DeadlineExceededError


@pytest.mark.parametrize(
    ("error", "label", "unhealthy"),
    [
        (BackendError("ProvisionedThroughputExceededException", "slow down"), failures.THROTTLED, True),
        (BackendError("ThrottlingException", "slow down"), failures.THROTTLED, True),
        (BackendError("ConditionalCheckFailedException", "no"), failures.CONDITION_FAILED, False),
        (BackendError("AccessDeniedException", "no", 400), failures.AUTH_ERROR, False),
        (BackendError("UnrecognizedClientException", "who", 400), failures.AUTH_ERROR, False),
        (BackendError("ValidationException", "bad"), failures.CLIENT_ERROR, False),
        (BackendError("ResourceNotFoundException", "no table"), failures.CLIENT_ERROR, False),
        (BackendError("InternalServerError", "oops", 500), failures.SERVER_ERROR, True),
        (BackendError("SomethingNew", "oops", 503), failures.SERVER_ERROR, True),
        (BackendUnavailableError("EndpointConnectionError", "refused"), failures.SERVER_ERROR, True),
        (BackendUnavailableError("NoCredentials", "none"), failures.AUTH_ERROR, False),
        (BackendUnavailableError("AssumeRoleFailed", "denied"), failures.AUTH_ERROR, False),
        (BackendUnavailableError("NoRegion", "none"), failures.SERVER_ERROR, False),
        (asyncio.CancelledError(), failures.CANCELLED, False),
        (DeadlineExceededError("GetItem"), failures.SERVER_ERROR, False),
        (RuntimeError("a bug"), failures.SERVER_ERROR, False),
    ],
)
def test_each_failure_has_one_label_and_one_health_verdict(
    error: BaseException, label: str, unhealthy: bool
) -> None:
    assert failures.status_label(error) == label
    assert failures.counts_against_health(error) is unhealthy


def test_the_code_logs_and_metrics_give_a_failure() -> None:
    assert failures.code_of(BackendError("ThrottlingException", "m")) == "ThrottlingException"
    assert failures.code_of(BackendUnavailableError("ReadTimeoutError", "m")) == "ReadTimeoutError"
    assert failures.code_of(ValueError("m")) == "ValueError"
