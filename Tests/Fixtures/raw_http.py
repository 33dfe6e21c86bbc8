"""Sends malformed and hostile HTTP requests to a server and prints one JSON line per case.

    python3 raw_http.py PORT

Each case opens its own connection, sends bytes no well-behaved client would, and records the status code the
server answered with (or `null` when it closed without answering). The test asserts on the codes.
"""
import json
import socket
import sys

PORT = int(sys.argv[1])
CASES = {
    "huge_header_value": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "many_headers": b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
    "header_over_limit": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    "garbage_request_line": b"GARBAGE\r\n\r\n",
    "binary_request_line": b"\x00\x01\x02\xff\xfe GET / HTTP/1.1\r\n\r\n",
    "unknown_method": b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    "delete_metrics": b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    "put_status": b"PUT /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "get_reload": b"GET /-/reload HTTP/1.1\r\nHost: x\r\n\r\n",
    "path_traversal": b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "encoded_traversal": b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_percent_query": b"GET /probe?backend=%ZZ%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "probe_without_backend": b"GET /probe?debug=maybe HTTP/1.1\r\nHost: x\r\n\r\n",
    "probe_huge_backend": b"GET /probe?backend=" + b"b" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "body_too_large": b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"a" * 1000,
    "negative_length": b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "chunked_post": b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "http_0_9": b"GET /metrics\r\n\r\n",
    "bad_version": b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
    "header_without_colon": b"GET /metrics HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
}

for name, payload in CASES.items():
    status = None
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as conn:
            conn.sendall(payload)
            data = b""
            while b"\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            parts = data.split(b" ", 2)
            if len(parts) >= 2 and parts[1].isdigit():
                status = int(parts[1])
    except OSError as error:
        status = None
        print(json.dumps({"case": name, "status": None, "error": str(error)}), flush=True)
        continue
    print(json.dumps({"case": name, "status": status}), flush=True)
