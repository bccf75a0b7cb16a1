"""gRPC server interceptors: tracing (tracing.py, when spans are recorded), then one RpcInterceptor
for request ids, RPC metrics, authentication, in-flight limits and request decoding, in the order
app.py gives them.

Each wraps the method handler's behavior (unary, or response-streaming written
with context.write or as an async generator) and leaves the servicer untouched.
Must not import the servicer or the backends.
"""

from .rpc import RpcChecks, RpcInterceptor
from .tracing import TracingInterceptor, tracing_interceptor

__all__ = ["RpcChecks", "RpcInterceptor", "TracingInterceptor", "tracing_interceptor"]
