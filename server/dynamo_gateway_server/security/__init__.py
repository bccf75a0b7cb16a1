"""Security: who may call (authentication), what they may do (policy), transport, limits, AWS credentials.

layer.SecurityLayer is the facade app.py wires (interceptors, server credentials,
the servicer's request guard, the reload loop); the other modules each own one
concern (see their docstrings). Only tls.py and layer.py know about gRPC; the
interceptors that put these modules on the RPC path live in the interceptors package.
"""
