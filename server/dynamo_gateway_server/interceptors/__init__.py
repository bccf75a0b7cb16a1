"""gRPC server interceptors: tracing, request ids, RPC metrics, then authentication, in-flight limits
and request decoding (auth.py, in_flight.py, request_decoding.py), in the order app.py gives them.

Each wraps the method handler's behavior (unary, or response-streaming written
with context.write or as an async generator) and leaves the servicer untouched.
Must not import the servicer or the backends.
"""

from .request_id import RequestIdInterceptor
from .rpc_metrics import RpcMetricsInterceptor
from .tracing import TracingInterceptor, tracing_interceptor

__all__ = ["RequestIdInterceptor", "RpcMetricsInterceptor", "TracingInterceptor", "tracing_interceptor"]
