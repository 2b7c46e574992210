"""``python -m cosfast.emulator`` (and ``cosfast emulator``): serve a folder as COS until stopped.

It prints the endpoint and the credentials it accepts, once, at startup. The default key pair
is a published test credential that opens nothing but this local server, so it is printed in
full: the user has to configure a client with it. A key given with --secret-key is the user's
own (possibly reused elsewhere), so it is shown masked; they already know it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from cosfast.emulator.server import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cosfast emulator",
        description="Serve a local folder as Tencent Cloud COS (for tests and demos).",
    )
    parser.add_argument(
        "--root", required=True, help="folder holding the buckets (created if missing)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--region", default="ap-guangzhou")
    parser.add_argument("--secret-id", default=None, help=f"default {DEFAULT_SECRET_ID}")
    parser.add_argument("--secret-key", default=None, help="default: the documented test key")
    parser.add_argument("--no-auth", action="store_true", help="accept any request, signed or not")
    parser.add_argument(
        "--bucket",
        action="append",
        default=[],
        help="create this bucket (name-appid); the first one also serves Domain= clients",
    )
    parser.add_argument(
        "--public-read", action="store_true", help="make the --bucket buckets public-read"
    )
    parser.add_argument(
        "--admin", action="store_true", help="enable the admin endpoint (/-/emulator/...)"
    )
    parser.add_argument("--tls-cert", help="serve https with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    if (args.secret_id is None) != (args.secret_key is None):
        parser.error("--secret-id and --secret-key go together")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    return args


def _masked(secret: str) -> str:
    return secret[:3] + "*" * max(0, len(secret) - 3) + " (as given)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    emulator = Emulator(
        args.root,
        secret_id=args.secret_id or DEFAULT_SECRET_ID,
        secret_key=args.secret_key or DEFAULT_SECRET_KEY,
        auth=not args.no_auth,
        region=args.region,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        host=args.host,
        port=args.port,
        admin=args.admin,
        default_bucket=args.bucket[0] if args.bucket else None,
    )
    for name in args.bucket:
        emulator.create_bucket(name, public_read=args.public_read)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        lines = [
            f"endpoint: {emulator.endpoint}",
            f"region: {emulator.region}",
            f"root: {emulator.root}",
        ]
        if args.no_auth:
            lines.append("auth: off (any request is accepted)")
        else:
            lines.append(f"secret_id: {emulator.secret_id}")
            key = emulator.secret_key if args.secret_key is None else _masked(args.secret_key)
            lines.append(f"secret_key: {key}")
        lines += [f"bucket: {name}" for name in args.bucket]
        if args.admin:
            lines.append(f"admin: {emulator.endpoint}/-/emulator/")
        print("\n".join(lines), flush=True)
        print("ready (Ctrl+C to stop)", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
