"""A fault-injecting proxy between s3-canary and the real RGW, one listener per backend, switched at run time.

    python3 fault_proxy.py CONTROL_PORT UPSTREAM_HOST UPSTREAM_PORT NAME=PORT [NAME=PORT ...]

`POST http://127.0.0.1:CONTROL_PORT/NAME` with a body of one mode switches that listener:

TCP faults
  pass          bytes flow both ways untouched (RGW checks the signature, Host included, as if called directly)
  latency:MS    every request waits MS milliseconds before it reaches RGW
  hang          connections are accepted and read, nothing is ever answered
  reset         the first request on a connection gets a TCP RST (SO_LINGER 0)
  close_body    responses with a body are cut off halfway and the connection closed
  refuse        the port stops listening: connects are refused

HTTP faults (answered by the proxy itself or made of RGW's real answer)
  500           500 InternalError for every request
  slowdown      503 SlowDown with Retry-After: 1
  403           403 AccessDenied
  corrupt       RGW's answer with one body byte flipped (GET with a body only)
  store_framing an aws-chunked PUT reaches the server as a plain one: Content-Encoding aws-chunked, the decoded
                length and the trailer headers are taken off, so a server that checks no signature (moto) stores
                the chunk framing as the object's bytes, as a broken gateway would
  bad_length    RGW's answer with Content-Length 100 bytes too large, then the connection closed
  trickle       RGW's answer with the body sent one byte every 200 ms

Multipart faults (every other request passes to RGW untouched)
  reset_part        an UploadPart (PUT ?partNumber=) is cut off mid-body with a TCP RST
  fail_complete     CompleteMultipartUpload (POST ?uploadId=) gets 500 InternalError
  notimpl_multipart CreateMultipartUpload (POST ?uploads) gets 501 NotImplemented, as a store without multipart says

Flapping
  flap:MS       alternates every MS milliseconds (wall clock) between 500 InternalError for every request and RGW's
                real answers: a backend whose breaker opens and closes over and over

Every switch is printed; `GET /NAME` returns the mode. Requests seen per listener are counted in `GET /stats`.
"""
import asyncio
import json
import socket
import struct
import sys
import time

from tcp_proxy import pipe  # the same byte copier, from the script's own folder

CONTROL_PORT = int(sys.argv[1])
UPSTREAM = (sys.argv[2], int(sys.argv[3]))
LISTENERS = dict((spec.split("=")[0], int(spec.split("=")[1])) for spec in sys.argv[4:])
modes = {name: "pass" for name in LISTENERS}
servers = {}
stats = {name: 0 for name in LISTENERS}
# Open client connections per listener: a switch closes them all, so kept-alive connections see the new mode.
connections = {name: set() for name in LISTENERS}
HTTP_MODES = {"500", "slowdown", "403", "corrupt", "store_framing", "bad_length", "trickle", "close_body", "hang", "reset",
              "reset_part", "fail_complete", "notimpl_multipart"}


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return head, lines[0], headers


async def read_body(reader, headers):
    """The raw body bytes as framed on the wire (Content-Length or chunked)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            raw += chunk
            if size == 0:
                # Trailers end with an empty line; "0\r\n\r\n" has already been read in that case.
                return raw
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def error_response(status, reason, code, message, extra=""):
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n{extra}"
            f"x-amz-request-id: fault-proxy\r\n\r\n").encode()
    return head + body


def rewrite_length(head, new_length):
    lines = head.split(b"\r\n")
    out = [line for line in lines if not line.lower().startswith(b"content-length:")]
    out.insert(1, b"Content-Length: %d" % new_length)
    return b"\r\n".join(out)


def drop_header(head, name):
    """The request head without the header `name` (lower-case bytes)."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:] if line.partition(b":")[0].strip().lower() != name]
    return b"\r\n".join(kept) + b"\r\n\r\n"


def strip_aws_chunked(head):
    """The request head of an aws-chunked PUT made to look like a plain PUT of the framed bytes."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"x-amz-decoded-content-length", b"x-amz-trailer", b"x-amz-sdk-checksum-algorithm"):
            continue
        if name == b"x-amz-content-sha256":
            line = b"x-amz-content-sha256: UNSIGNED-PAYLOAD"
        if name == b"content-encoding":
            kept = [v.strip() for v in value.split(b",") if v.strip() and v.strip().lower() != b"aws-chunked"]
            if not kept:
                continue
            line = b"Content-Encoding: " + b", ".join(kept)
        out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n"


def abort(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def http_faults(name, reader, writer):
    """Handles requests one by one on this connection, each through the listener's current mode."""
    upstream = None
    try:
        while True:
            try:
                head, request_line, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            mode = modes[name]
            method, target = request_line.split(" ")[:2]
            if headers.get("expect", "").lower() == "100-continue":
                # botocore waits for the interim answer before it sends a body: give it here, and take the header
                # off what goes upstream, so that the upstream's answer read below is the final one.
                head = drop_header(head, b"expect")
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            if mode == "reset_part" and method == "PUT" and "partNumber=" in target:
                # Half the part arrives, then the connection dies: the client sees a reset mid-upload.
                length = int(headers.get("content-length", "0") or 0)
                await reader.readexactly(length // 2)
                stats[name] += 1
                abort(writer)
                return
            body = await read_body(reader, headers)
            stats[name] += 1
            if mode == "fail_complete" and method == "POST" and "uploadId=" in target:
                writer.write(error_response(500, "Internal Server Error", "InternalError", "injected: complete fails"))
                await writer.drain()
                continue
            if mode == "notimpl_multipart" and method == "POST" and "?uploads" in target:
                writer.write(error_response(501, "Not Implemented", "NotImplemented",
                                            "A header you provided implies functionality that is not implemented"))
                await writer.drain()
                continue
            if (mode == "store_framing" and method == "PUT"
                    and "aws-chunked" in headers.get("content-encoding", "").lower()):
                head = strip_aws_chunked(head)
            if mode == "hang":
                await asyncio.sleep(3600)
                return
            if mode == "reset":
                abort(writer)
                return
            if mode.startswith("latency:"):
                await asyncio.sleep(int(mode.split(":")[1]) / 1000)
            if mode.startswith("flap:") and int(time.time() * 1000 / int(mode.split(":")[1])) % 2 == 0:
                writer.write(error_response(500, "Internal Server Error", "InternalError", "injected: flapping"))
                await writer.drain()
                continue
            if mode == "500":
                writer.write(error_response(500, "Internal Server Error", "InternalError", "injected by fault_proxy"))
                await writer.drain()
                continue
            if mode == "slowdown":
                writer.write(error_response(503, "Slow Down", "SlowDown", "Please reduce your request rate.", "Retry-After: 1\r\n"))
                await writer.drain()
                continue
            if mode == "403":
                writer.write(error_response(403, "Forbidden", "AccessDenied", "Access Denied"))
                await writer.drain()
                continue
            if upstream is None:
                upstream = await asyncio.open_connection(*UPSTREAM)
            up_reader, up_writer = upstream
            up_writer.write(head + body)
            await up_writer.drain()
            response_head, status_line, response_headers = await read_head(up_reader)
            response_body = b"" if method == "HEAD" else await read_body(up_reader, response_headers)
            has_body = method == "GET" and len(response_body) > 0 and status_line.split(" ")[1] in ("200", "206")
            if mode == "corrupt" and has_body:
                flipped = bytearray(response_body)
                flipped[len(flipped) // 2] ^= 0xFF
                response_body = bytes(flipped)
            elif mode == "bad_length" and has_body:
                writer.write(rewrite_length(response_head, len(response_body) + 100) + response_body)
                await writer.drain()
                writer.close()
                return
            elif mode == "close_body" and has_body:
                writer.write(response_head + response_body[: len(response_body) // 2])
                await writer.drain()
                writer.close()
                return
            elif mode == "trickle" and has_body:
                writer.write(response_head)
                for index in range(len(response_body)):
                    writer.write(response_body[index:index + 1])
                    await writer.drain()
                    await asyncio.sleep(0.2)
                continue
            writer.write(response_head + response_body)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if upstream is not None:
            upstream[1].close()
        try:
            writer.close()
        except Exception:
            pass


def handler(name):
    async def handle(reader, writer):
        connections[name].add(writer)
        try:
            mode = modes[name]
            if mode == "pass":
                try:
                    up_reader, up_writer = await asyncio.open_connection(*UPSTREAM)
                except OSError:
                    writer.close()
                    return
                connections[name].add(up_writer)
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
                connections[name].discard(up_writer)
            else:
                await http_faults(name, reader, writer)
        finally:
            connections[name].discard(writer)
    return handle


async def listen(name):
    servers[name] = await asyncio.start_server(handler(name), "127.0.0.1", LISTENERS[name], backlog=256, reuse_address=True)


async def control(reader, writer):
    try:
        _, request_line, headers = await read_head(reader)
        body = (await read_body(reader, headers)).decode().strip()
        method, path = request_line.split(" ")[:2]
        name = path.strip("/")
        status, answer = 200, ""
        if path == "/stats":
            answer = json.dumps(stats)
        elif name not in LISTENERS:
            status, answer = 404, "no such listener"
        elif method == "POST":
            if body not in HTTP_MODES | {"pass", "refuse"} and not body.startswith(("latency:", "flap:")):
                status, answer = 400, f"unknown mode {body}"
            else:
                previous = modes[name]
                modes[name] = body
                for open_writer in list(connections[name]):
                    open_writer.transport.abort()
                connections[name].clear()
                if body == "refuse" and name in servers:
                    servers.pop(name).close()
                elif previous == "refuse" and name not in servers:
                    await listen(name)
                print(f"{name}: {previous} -> {body}", flush=True)
                answer = body
        else:
            answer = modes[name]
        data = answer.encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(data)) + data)
        await writer.drain()
    finally:
        writer.close()


async def main():
    for name in LISTENERS:
        await listen(name)
    control_server = await asyncio.start_server(control, "127.0.0.1", CONTROL_PORT, reuse_address=True)
    print("ready", flush=True)
    async with control_server:
        await control_server.serve_forever()


asyncio.run(main())
