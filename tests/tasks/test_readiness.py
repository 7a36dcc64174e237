"""Waiting for a server before its first use: what counts as an answer, the wait, and the one-line failure."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.errors import LockgateError
from tasks.readiness import answers, wait_until_answers


class _Server:
    """An HTTP server on 127.0.0.1 replying with ``codes`` in turn (the last one for ever)."""

    def __init__(self, *codes: int):
        self.codes, self.requests = list(codes), 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code = outer.codes[min(outer.requests, len(outer.codes) - 1)]
                outer.requests += 1
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("code,answered", [(200, True), (401, True), (404, True), (502, False), (503, False)])
def test_a_reply_below_500_is_an_answer(code, answered):
    with _Server(code) as server:
        assert answers(f"{server.url}/health") is answered


def test_a_refused_connection_or_a_bad_url_is_no_answer(closed_port):
    assert not answers(f"http://127.0.0.1:{closed_port}/health")
    assert not answers("not a url")


def test_a_loopback_server_is_reached_past_an_environment_proxy(monkeypatch, closed_port):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with _Server(200) as server:
        assert answers(f"{server.url}/health")


def test_the_wait_polls_until_the_server_answers():
    with _Server(503, 503, 200) as server:  # a proxy in front of a backend that is still starting
        wait_until_answers(f"{server.url}/health", limit=600, failure=lambda: "never", poll=0.01)
        assert server.requests == 3


def test_the_wait_fails_in_the_failure_line_past_the_limit_or_when_the_server_is_gone(closed_port):
    url = f"http://127.0.0.1:{closed_port}/health"
    with pytest.raises(LockgateError, match="^no answer within 0.2 s$"):
        wait_until_answers(url, limit=0.2, failure=lambda: "no answer within 0.2 s", poll=0.01)
    with pytest.raises(LockgateError, match="^it exited$"):
        wait_until_answers(url, limit=600, failure=lambda: "never", gone=lambda: "it exited", poll=0.01)
