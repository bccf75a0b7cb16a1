"""The fuzzers' verdict on one answer: a clean status, or a violation saying what is wrong with it.

Every answer must be OK or carry, in grpc-status-details-bin, exactly one ErrorInfo
whose reason is a taxonomy leaf sent with that leaf's own code. The gateway's own
INVALID_ARGUMENT must also name the field (a BadRequest field violation); one passed
through from the emulator (aws_error_code set) need not. INTERNAL and UNKNOWN are
bugs whatever their details; DEADLINE_EXCEEDED without details is the caller's own
deadline running out, so the gateway hung. Pure: no grpc calls of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

from dynamo_gateway.taxonomy import BY_REASON
from dynamo_gateway_server.errors import ERROR_DOMAIN

_BUG_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
_ERROR_INFO = error_details_pb2.ErrorInfo.DESCRIPTOR.full_name
_BAD_REQUEST = error_details_pb2.BadRequest.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Outcome:
    """One call's answer: its code, its leaf ("" for OK), who refused it, and what is wrong ("" if nothing)."""

    code: str
    leaf: str = ""
    from_backend: bool = False
    violation: str = ""
    field: str = ""
    """The field a refusal names (ErrorInfo's metadata), if any."""

    @property
    def label(self) -> str:
        return f"{self.code} {self.leaf}".strip()


OK = Outcome("OK")


def judge(code: grpc.StatusCode, message: str, trailing: tuple[tuple[str, str | bytes], ...]) -> Outcome:
    """The verdict on a call that ended with `code` (not OK), `message` and these trailers."""
    raw = next((value for key, value in trailing if key == "grpc-status-details-bin"), None)
    if raw is None:
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return Outcome(code.name, violation="hang: the call ran into its deadline without an answer")
        return Outcome(code.name, violation=f"no status details ({message[:200]!r})")
    status = status_pb2.Status.FromString(raw if isinstance(raw, bytes) else raw.encode())
    infos, bad_requests = [], []
    for detail in status.details:
        name = detail.type_url.rsplit("/", 1)[-1]
        if name == _ERROR_INFO:
            infos.append(error_details_pb2.ErrorInfo.FromString(detail.value))
        elif name == _BAD_REQUEST:
            bad_requests.append(error_details_pb2.BadRequest.FromString(detail.value))
    if len(infos) != 1:
        return Outcome(
            code.name, violation=f"{len(infos)} ErrorInfo details instead of one ({message[:200]!r})"
        )
    info = infos[0]
    from_backend = bool(info.metadata.get("aws_error_code"))
    outcome = Outcome(code.name, info.reason, from_backend, field=info.metadata.get("field", ""))
    leaf = BY_REASON.get(info.reason)
    if code in _BUG_CODES:
        return _violated(outcome, f"a bug status: {message[:300]!r}")
    if leaf is None or info.domain != ERROR_DOMAIN:
        return _violated(outcome, f"reason {info.reason!r} in domain {info.domain!r} is not a taxonomy leaf")
    if leaf.grpc_code != code.name:
        return _violated(outcome, f"leaf {leaf.reason} is sent as {leaf.grpc_code}, not {code.name}")
    if status.code != code.value[0]:
        return _violated(outcome, f"the details say code {status.code}, the call {code.name}")
    if code is grpc.StatusCode.INVALID_ARGUMENT and not from_backend:
        fields = [v.field for bad in bad_requests for v in bad.field_violations]
        if not fields or not all(fields):
            return _violated(outcome, f"INVALID_ARGUMENT names no field ({message[:200]!r})")
    return outcome


def _violated(outcome: Outcome, why: str) -> Outcome:
    return Outcome(outcome.code, outcome.leaf, outcome.from_backend, why, outcome.field)


@dataclass
class Tally:
    """Counts of answers by status and leaf, how many reached the backend, and the violations seen."""

    by_label: Counter[str] = field(default_factory=Counter)
    reached_backend: int = 0
    violations: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, request as text, what is wrong)."""
    samples: dict[str, str] = field(default_factory=dict)
    """The first request that got each answer, as "method: request"."""

    @property
    def requests(self) -> int:
        return sum(self.by_label.values())

    def add(self, method: str, request_text: str, outcome: Outcome) -> None:
        self.by_label[outcome.label] += 1
        self.samples.setdefault(outcome.label, f"{method}: {request_text}")
        if outcome.code == "OK" or outcome.from_backend:
            self.reached_backend += 1
        if outcome.violation:
            self.violations.append((method, request_text, outcome.violation))

    def merge(self, other: Tally) -> None:
        self.by_label.update(other.by_label)
        self.reached_backend += other.reached_backend
        self.violations.extend(other.violations)
        for label, sample in other.samples.items():
            self.samples.setdefault(label, sample)

    def report(self, samples: bool = False) -> str:
        lines = [f"{self.requests} requests, {self.reached_backend} reached the backend"]
        for label, count in sorted(self.by_label.items()):
            lines.append(f"  {count:7d}  {label}")
            if samples:
                lines.append(f"             e.g. {self.samples[label][:300]}")
        lines.append(f"{len(self.violations)} violations")
        lines += [f"  {method}: {why}\n    {text[:600]!r}" for method, text, why in self.violations[:20]]
        return "\n".join(lines)
