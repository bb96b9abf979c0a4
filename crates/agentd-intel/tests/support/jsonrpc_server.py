#!/usr/bin/env python3
"""A JSON-RPC 2.0 `complete` server for agentd-intel tests (stdlib only).

Usage:
  jsonrpc_server.py unix PATH            framed (4-byte little-endian length + JSON) on a Unix socket
  jsonrpc_server.py http [--bearer TOK]  JSON over HTTP POST on 127.0.0.1, ephemeral port, path /rpc

Prints one line `READY <socket path | http://127.0.0.1:PORT/rpc>` once listening.

The last user message selects the behaviour:
  inspect        content = JSON of {"id", "params", "authorization"} as received
  echo:TEXT      content = TEXT, usage 5/2
  error          JSON-RPC error -32000 "upstream overloaded"
  wrong-id       answers with id + 1
  null-id-error  error with id null (valid)
  no-result      neither result nor error
  bad-content    result.content is a number
  garbage        a body / frame that is not JSON
  huge           unix: a frame header announcing 16 MiB + 1; http: a 5 MiB body
  truncated      a frame or body shorter than announced, then close
  close          close without answering
  flaky          HTTP 503 + Retry-After: 0 on the first flaky request, then echo "recovered"
  status:N       HTTP status N (http only)
  chunked        answer with Transfer-Encoding: chunked (http only)
  slow           wait 5 s, then answer
"""

import json
import os
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLAKY = {"count": 0}
LOCK = threading.Lock()


def command_of(request):
    messages = request.get("params", {}).get("messages", [])
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def answer(request, authorization=None):
    """Returns ("json", obj) or ("raw", bytes) or ("close", None) or ("status", n)."""
    rid = request.get("id")
    command = command_of(request)
    if command == "slow":
        time.sleep(5)
    if command == "inspect":
        content = json.dumps({"id": rid, "params": request.get("params"), "authorization": authorization})
        return "json", {"jsonrpc": "2.0", "id": rid, "result": {"content": content, "usage": {"prompt_tokens": 1}}}
    if command.startswith("echo:"):
        usage = {"prompt_tokens": 5, "completion_tokens": 2}
        return "json", {"jsonrpc": "2.0", "id": rid, "result": {"content": command[5:], "usage": usage}}
    if command == "error":
        return "json", {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": "upstream overloaded"}}
    if command == "null-id-error":
        return "json", {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
    if command == "wrong-id":
        return "json", {"jsonrpc": "2.0", "id": rid + 1, "result": {"content": "x"}}
    if command == "no-result":
        return "json", {"jsonrpc": "2.0", "id": rid}
    if command == "bad-content":
        return "json", {"jsonrpc": "2.0", "id": rid, "result": {"content": 5}}
    if command == "garbage":
        return "raw", b"\x00\xffnot json at all"
    if command in ("huge", "truncated", "close", "chunked"):
        return command, None
    if command == "flaky":
        with LOCK:
            FLAKY["count"] += 1
            first = FLAKY["count"] == 1
        if first:
            return "status", 503
        return "json", {"jsonrpc": "2.0", "id": rid, "result": {"content": "recovered"}}
    if command.startswith("status:"):
        return "status", int(command[7:])
    return "json", {"jsonrpc": "2.0", "id": rid, "result": {"content": "default"}}


class FramedHandler(socketserver.BaseRequestHandler):
    def read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def handle(self):
        header = self.read_exact(4)
        if header is None:
            return
        (length,) = struct.unpack("<I", header)
        body = self.read_exact(length)
        if body is None:
            return
        request = json.loads(body)
        kind, value = answer(request)
        if kind == "json":
            payload = json.dumps(value).encode()
            self.request.sendall(struct.pack("<I", len(payload)) + payload)
        elif kind == "raw":
            self.request.sendall(struct.pack("<I", len(value)) + value)
        elif kind == "huge":
            self.request.sendall(struct.pack("<I", 16 * 1024 * 1024 + 1))
        elif kind == "truncated":
            self.request.sendall(struct.pack("<I", 100) + b'{"jsonrpc"')
        # "close" and anything else: close without answering.


class HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bearer = None

    def log_message(self, *args):
        pass

    def send_bytes(self, status, payload, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        authorization = self.headers.get("Authorization")
        if self.bearer is not None and authorization != "Bearer " + self.bearer:
            self.send_bytes(401, b'{"error": "unauthorized"}')
            return
        if self.path != "/rpc":
            self.send_bytes(404, b'{"error": "not found"}')
            return
        request = json.loads(body)
        kind, value = answer(request, authorization)
        if kind == "json":
            self.send_bytes(200, json.dumps(value).encode())
        elif kind == "raw":
            self.send_bytes(200, value)
        elif kind == "status":
            self.send_bytes(value, b'{"error": "status"}', [("Retry-After", "0")])
        elif kind == "huge":
            self.send_bytes(200, b" " * (5 * 1024 * 1024))
        elif kind == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"jsonrpc"')
            self.wfile.flush()
            self.close_connection = True
        elif kind == "chunked":
            payload = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": {"content": "chunked ok"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), 7):
                piece = payload[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.close_connection = True


def main():
    mode = sys.argv[1]
    if mode == "unix":
        path = sys.argv[2]
        if os.path.exists(path):
            os.unlink(path)
        server = socketserver.ThreadingUnixStreamServer(path, FramedHandler)
        endpoint = path
    else:
        if "--bearer" in sys.argv:
            HttpHandler.bearer = sys.argv[sys.argv.index("--bearer") + 1]
        server = ThreadingHTTPServer(("127.0.0.1", 0), HttpHandler)
        endpoint = "http://127.0.0.1:%d/rpc" % server.server_address[1]
    server.daemon_threads = True
    print("READY " + endpoint, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
