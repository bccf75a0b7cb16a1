"""Observability: traces, Prometheus metrics, structured logs, consumed capacity, partition signals.

telemetry.Telemetry is the facade app.py wires; the other modules each own one
concern (see their docstrings). Nothing here imports the servicer, and only
telemetry.py and the interceptors package know about gRPC. Nothing is imported
here: the pure modules (request_context, operations, capacity) load without gRPC.
"""
