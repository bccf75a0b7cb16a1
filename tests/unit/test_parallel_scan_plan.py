"""A ParallelScan's plan and progress stay small however many segments the caller asks for."""

from __future__ import annotations

import itertools
import tracemalloc

from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server import codec
from dynamo_gateway_server.service import _ScanProgress

MILLION = 1_000_000  # DynamoDB's largest TotalSegments


def test_every_segment_of_a_million_is_planned_without_a_million_entries() -> None:
    request = service_pb2.ParallelScanRequest(table_name="app", total_segments=MILLION)
    tracemalloc.start()
    try:
        _, starts = codec.parallel_scan_plan(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # a dict of a million segments takes tens of MB
    assert len(starts) == MILLION
    assert starts[MILLION - 1] is None and MILLION not in starts
    assert list(itertools.islice(starts.items(), 3)) == [(0, None), (1, None), (2, None)]


def test_progress_keeps_only_the_segments_under_way() -> None:
    request = service_pb2.ParallelScanRequest(table_name="app", total_segments=4)
    listed = request.segments.add(segment=2)
    listed.exclusive_start_key["pk"].s = "from-the-caller"
    _, starts = codec.parallel_scan_plan(request)
    progress = _ScanProgress(starts, request.segments)
    assert [(s.segment, dict(s.exclusive_start_key)) for s in progress.remaining()] == [
        (2, {"pk": listed.exclusive_start_key["pk"]})
    ]
    _, every = codec.parallel_scan_plan(service_pb2.ParallelScanRequest(table_name="app", total_segments=3))
    progress = _ScanProgress(every, [])
    page = service_pb2.ParallelScanResponse(segment=1)
    page.last_evaluated_key["pk"].s = "k"
    progress.sent(page)
    progress.sent(service_pb2.ParallelScanResponse(segment=0, segment_done=True))
    remaining = progress.remaining()
    assert [s.segment for s in remaining] == [1, 2]
    assert remaining[0].exclusive_start_key["pk"].s == "k" and not remaining[1].exclusive_start_key
