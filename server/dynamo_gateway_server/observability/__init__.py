"""Observability: traces, Prometheus metrics, structured logs, consumed capacity, partition signals.

telemetry.Telemetry is the facade app.py wires; the other modules each own one
concern (see their docstrings). Nothing here imports the servicer, and only
telemetry.py and the interceptors package know about gRPC.
"""

from .telemetry import Telemetry, configure_process_logging, instrument_backend

__all__ = ["Telemetry", "configure_process_logging", "instrument_backend"]
