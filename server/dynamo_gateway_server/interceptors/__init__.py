"""gRPC server interceptors: one RpcInterceptor (rpc.py) for the server span, request ids, RPC
metrics, authentication, in-flight limits and request decoding, in that order; app.py wires it.

It wraps the method handler's behavior (unary, or response-streaming written
with context.write or as an async generator) and leaves the servicer untouched.
Nothing is imported here, so a module of this package loads only what it needs.
Must not import the servicer or the backends.
"""
