"""`python -m dynamo_gateway_server.security.new_token NAME`: mints a static bearer token for a caller.

Prints the token once (give it to the caller, e.g. as a Kubernetes secret) and
the entry for the tokens file, which holds only its SHA-256: the gateway never
needs, and never stores, the token itself.
"""

from __future__ import annotations

import secrets
import sys

from .auth import TOKEN_NAME, token_digest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not TOKEN_NAME.fullmatch(args[0]):
        print(
            "usage: python -m dynamo_gateway_server.security.new_token NAME  (A-Z a-z 0-9 . _ : @ / + -)",
            file=sys.stderr,
        )
        return 2
    # 256 bits from the OS's generator: one SHA-256 is then as good as any password hash.
    token = f"dgw_{secrets.token_urlsafe(32)}"
    print(f"token (give it to the caller; it is shown only now):\n  {token}")
    print(f"tokens file entry:\n  - name: {args[0]}\n    sha256: {token_digest(token)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
