"""The sandbox's HTTP(S) server: stdlib ``ThreadingHTTPServer``, one thread per connection,
HTTP/1.1 keep-alive, TLS wrapped in the connection's thread so a slow handshake blocks no one.

Malformed requests (bad request lines, unknown methods, huge, truncated or chunked bodies) get a
Salesforce-shaped JSON error list and never a traceback; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from requests.structures import CaseInsensitiveDict

from sf_pipeline.sandbox.dispatch import dispatch
from sf_pipeline.sandbox.errors import BadRequest, LengthRequired, RequestTooLarge, SandboxError
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.tls import TlsFiles, make_tls_files
from sf_pipeline.sandbox.wire import Request, Response, error_response

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may sit idle
BODY_TIMEOUT = 5.0  # seconds to receive a body once its headers arrived
HANDSHAKE_TIMEOUT = 10.0


class _Connection(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sf-sandbox"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, unknown method, ...) in Salesforce's error format."""
        err = SandboxError(message or HTTPStatus(code).phrase)
        err.status = code
        err.error_code = "METHOD_NOT_ALLOWED" if code == 501 else "INVALID_REQUEST"
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._write(error_response(err), close=True)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except SandboxError as err:
            self.close_connection = True
            self._write(error_response(err), close=True)
            return
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=CaseInsensitiveDict(self.headers.items()),
            body=body,
            base_url=self.server.base_url,
        )
        response = dispatch(self.server.org, request)
        self._write(response, close=self.close_connection)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise LengthRequired("Chunked request bodies are not supported; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if not raw_length:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if length < 0:
            raise BadRequest("Content-Length is negative")
        if length > MAX_BODY:
            raise RequestTooLarge(f"Request bodies are limited to {MAX_BODY} bytes")
        self.connection.settimeout(BODY_TIMEOUT)
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            raise BadRequest("The request body was shorter than its Content-Length") from None
        finally:
            self.connection.settimeout(IDLE_TIMEOUT)
        if len(body) < length:
            raise BadRequest("The request body was shorter than its Content-Length")
        return body

    def _write(self, response: Response, *, close: bool) -> None:
        body = b"" if self.command == "HEAD" else response.body
        lines = [
            f"HTTP/1.1 {response.status} {_phrase(response.status)}",
            f"Date: {self.date_time_string()}",
            f"Content-Length: {len(response.body)}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{k}: {v}" for k, v in response.headers.items())
        if close or response.drop_midway:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if response.drop_midway:
            self.wfile.write(head + body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(head + body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], org: Org, tls: ssl.SSLContext | None) -> None:
        super().__init__(address, _Connection)
        self.org = org
        self.tls = tls
        host, port = self.server_address[:2]
        self.base_url = f"{'https' if tls else 'http'}://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                request.settimeout(HANDSHAKE_TIMEOUT)
                conn = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                request.close()
                return
        try:
            _Connection(conn, client_address, self)
        except OSError as exc:
            log.debug("connection from %s ended: %s", client_address, exc)
        finally:
            if conn is not request:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


class SandboxServer:
    """Serves one ``Org`` on 127.0.0.1 over HTTPS (or plain HTTP if ``https=False``).

    Certificates go to ``state_dir``; without one, all servers in the process share one set in
    a temporary directory removed at exit.

    ``start()`` serves from a daemon thread; ``serve_forever()`` serves from the caller's thread.
    Port 0 picks a free port; ``url`` tells which.
    """

    def __init__(
        self,
        org: Org,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        https: bool = True,
        state_dir: Path | None = None,
    ) -> None:
        self.org = org
        self.tls_files: TlsFiles | None = None
        if https:
            self.tls_files = make_tls_files(state_dir) if state_dir else _shared_tls_files()
        context = self.tls_files.server_context() if self.tls_files else None
        self._httpd = _HttpServer((host, port), org, context)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._httpd.base_url

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def ca_bundle(self) -> Path | None:
        return self.tls_files.bundle if self.tls_files else None

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sf-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        """Stop accepting connections and release the port (and the temporary state dir)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()


_shared: tuple[tempfile.TemporaryDirectory[str], TlsFiles] | None = None
_shared_lock = threading.Lock()


def _shared_tls_files() -> TlsFiles:
    """One certificate set per process for servers without a state dir (tests start many)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared[1].bundle.exists():
            directory = tempfile.TemporaryDirectory(prefix="sf-sandbox-")
            _shared = (directory, make_tls_files(Path(directory.name)))
        return _shared[1]
