"""A real HTTP server on 127.0.0.1 (ephemeral port) that answers every GET with 200 and a body,
for the tests that run pycurl transfers without the emulator."""
from __future__ import annotations

import contextlib
import http.server
import threading
from typing import Callable, Iterator


def serving_bodies(body_for: Callable[[str], bytes]) -> contextlib.AbstractContextManager[str]:
    """Serves ``body_for(path)`` to each GET; yields ``http://127.0.0.1:<port>``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = body_for(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except ConnectionError:
                pass  # abort tests' clients hang up mid-body on purpose

        def log_message(self, *args):
            pass

    @contextlib.contextmanager
    def serve() -> Iterator[str]:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    return serve()
