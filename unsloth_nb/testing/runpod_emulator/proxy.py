"""The emulated pod HTTP proxy: ``https://{pod_id}-{port}.proxy.runpod.net`` on loopback.

RunPod exposes each ``<port>/http`` of a pod at its own host name; on loopback a
host name per pod is not resolvable everywhere, so the pod and port move into the
path instead: ``http://127.0.0.1:<proxy port>/{pod_id}-{port}/...`` reaches
``/...`` on the pod's server. Code under test formats the template it is given
and never notices the difference.

Behaviour copied from the real proxy (reference, section 2.1): requests and
responses stream in both directions (long-polls and large downloads work), every
end-to-end header passes (``Range`` included), a port nothing listens on or a pod
that is not running answers an HTML 502, an unknown pod or port an HTML 404, and
an answer that has not started within ``timeout_s`` (Cloudflare's 100 s) a 524.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

from unsloth_nb.testing.loopback_http import LoopbackHandler, LoopbackServer
from unsloth_nb.testing.runpod_emulator.cloud import Cloud

_TARGET = re.compile(r"^/([a-z0-9]+)-(\d{1,5})(?=/|\?|$)")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_CHUNK = 64 * 1024

_PAGES = {
    404: ("404 Not Found", "There is no pod or HTTP port at this address."),
    502: ("502 Bad Gateway", "The pod is not running, or nothing listens on this port yet (bind 0.0.0.0 on RunPod)."),
    524: ("524 A timeout occurred", "The pod did not answer within the proxy's timeout."),
}


class ProxyServer(LoopbackServer):
    """Threaded loopback HTTP server forwarding to pods' loopback ports."""

    def __init__(self, port: int, cloud: Cloud, timeout_s: float) -> None:
        super().__init__(port, ProxyHandler)
        self.cloud = cloud
        self.timeout_s = timeout_s


class ProxyHandler(LoopbackHandler):
    server: ProxyServer
    log_label = "proxy"

    def _forward(self) -> None:
        match = _TARGET.match(self.path)
        if match is None:
            self._page(404)
            return
        pod_id, port = match.group(1), int(match.group(2))
        path = self.path[match.end() :] or "/"
        if path.startswith("?"):
            path = "/" + path
        local_port, status = self.server.cloud.proxy_target(pod_id, port)
        if local_port is None:
            self._page(status)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", local_port, timeout=self.server.timeout_s)
        try:
            try:
                response = self._send_upstream(upstream, path)
            except TimeoutError:
                self._page(524)
                return
            except (OSError, http.client.HTTPException):
                self._page(502)
                return
            self._relay(response)
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def _send_upstream(self, upstream: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        upstream.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                upstream.putheader(name, value)
        upstream.putheader("X-Forwarded-For", self.client_address[0])
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        upstream.endheaders()
        if chunked:
            for piece in self._chunked_body():
                upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            upstream.send(b"0\r\n\r\n")
        else:
            left = length
            while left > 0:
                piece = self.rfile.read(min(_CHUNK, left))
                if not piece:
                    break
                upstream.send(piece)
                left -= len(piece)
        return upstream.getresponse()

    def _chunked_body(self) -> Iterator[bytes]:
        """The decoded pieces of a chunked request body, trailers skipped."""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """Send the pod's answer back as it arrives; a body of unknown length goes out chunked."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        bodiless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        known_length = response.getheader("Content-Length") is not None
        chunked = not bodiless and not known_length and self.request_version != "HTTP/1.0"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not bodiless and not known_length:
            self.close_connection = True  # an HTTP/1.0 client reads to the end of the connection
        self.end_headers()
        if bodiless:
            return
        try:
            while True:
                piece = response.read1(_CHUNK)
                if not piece:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            # The pod or the client went away mid-answer: all we can do is cut the connection.
            self.close_connection = True

    def _page(self, status: int) -> None:
        title, text = _PAGES[status]
        body = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>\n".encode()
        self.close_connection = True  # the request body, if any, was not read
        self.send_bytes(status, body, "text/html; charset=UTF-8", {"Connection": "close"}, head=self.command == "HEAD")
