"""Fronts for every address behind one endpoint name: a listener per loopback address, all on the same port.

    python3 address_front.py --upstream HOST:PORT --port PORT [--tls CERT KEY] [--alt-tls CERT KEY]
                             --control CONTROL_PORT ADDRESS [ADDRESS ...]

The tests' DNS server answers the endpoint name (s3.canary.test) with several addresses, say 127.0.0.2, 127.0.0.3,
127.0.0.4 and ::1 (all of 127.0.0.0/8 answers on Linux with no setup). This script listens on every ADDRESS:PORT and
copies each connection unchanged to the one real S3 server at --upstream (RGW, plain HTTP); with --tls it terminates
TLS itself first. Each address can then be broken on its own, so a test can check that the canary names the address
that failed and the phase it failed in. Prints "ready" once every listener and the control server are up; runs until
killed.

Control, HTTP on 127.0.0.1:CONTROL_PORT (JSON answers):
  POST /mode?address=ADDRESS&mode=MODE   sets one address's mode; 200 with every address's mode, 400 naming the bad
                                         parameter (the parameters may also come as a form-encoded body)
  GET  /modes                            every address's mode
  GET  /connections                      per address, connections accepted so far and currently open

Modes apply to connections accepted from the moment they are set; a connection keeps the behaviour it began with.
  ok              forward (TLS with the --tls certificate, if any)
  stall           accept and never answer: no TLS handshake, nothing sent; the socket stays open until the client
                  closes it (what the client sends is read and dropped, only so that its close is noticed)
  stall_response  TLS (if any), read the request, never answer: the client's first byte times out after it sent
  refuse_new      the address stops listening, so connects are refused (ECONNREFUSED); connections made before keep
                  forwarding. Any other mode listens again on the same address and port (SO_REUSEADDR).
  reset           accept, then close at once with a TCP RST (SO_LINGER 0). The RST can beat a non-blocking client's
                  check of its connect, so the client may report a failed connect or a failed first read/handshake
                  (curl on loopback: about half each)
  reset_on_data   accept, wait for the client's first bytes (TLS ClientHello, or the request without --tls), then
                  RST: the connect has certainly succeeded, the handshake or the first response read fails
  alt_cert        TLS with the --alt-tls certificate instead (a name or CA the client should reject), then forward
"""
import argparse
import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import struct
from urllib.parse import parse_qs, urlsplit

from tcp_proxy import pipe  # the same byte copier, from the script's own folder

MODES = ("ok", "stall", "stall_response", "refuse_new", "reset", "reset_on_data", "alt_cert")


def normalized(address):
    """The address in one spelling ("[::1]" and "0:0::1" are "::1"), or None if it is not an IP literal."""
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).compressed
    except ValueError:
        return None


def tls_context(pair):
    if pair is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pair)
    return context


class Front:
    def __init__(self, arguments):
        host, _, port = arguments.upstream.rpartition(":")
        self.upstream = (host.strip("[]"), int(port))
        self.port = arguments.port
        self.tls = tls_context(arguments.tls)
        self.alt_tls = tls_context(arguments.alt_tls)
        self.addresses = []
        for address in arguments.addresses:
            name = normalized(address)
            if name is None:
                raise SystemExit(f"not an IP address: {address}")
            if name not in self.addresses:
                self.addresses.append(name)
        self.modes = {address: "ok" for address in self.addresses}
        self.servers = {}
        self.accepted = {address: 0 for address in self.addresses}
        self.open = {address: 0 for address in self.addresses}
        self.tasks = set()  # strong references to connection handlers

    async def listen(self, address):
        self.servers[address] = await asyncio.start_server(
            self.handler(address), address, self.port, backlog=512, reuse_address=True)

    def handler(self, address):
        async def handle(reader, writer):
            self.accepted[address] += 1
            self.open[address] += 1
            task = asyncio.current_task()
            self.tasks.add(task)
            try:
                await self.serve(self.modes[address], reader, writer)
            except Exception:
                pass  # one broken connection never matters to the others
            finally:
                self.open[address] -= 1
                self.tasks.discard(task)
                try:
                    writer.transport.abort()
                except Exception:
                    pass
        return handle

    async def serve(self, mode, reader, writer):
        # Nothing may await before start_tls: bytes the client sent would be read as plain text and lost to TLS.
        if mode == "reset":
            reset(writer)
            return
        if mode == "reset_on_data":
            await reader.read(1)
            reset(writer)
            return
        if mode == "stall":
            await drain_until_closed(reader)
            return
        context = self.alt_tls if mode == "alt_cert" else self.tls
        if context is not None:
            await writer.start_tls(context)
        if mode == "stall_response":
            await drain_until_closed(reader)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def set_mode(self, address, mode):
        previous = self.modes[address]
        if mode == "refuse_new":
            server = self.servers.pop(address, None)
            if server is not None:
                server.close()  # stops listening only: connections already accepted go on
        elif address not in self.servers:
            await self.listen(address)
        self.modes[address] = mode
        if previous != mode:
            print(f"{address}: {previous} -> {mode}", flush=True)

    async def control(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            body = (await reader.readexactly(length)).decode("latin-1") if length else ""
            url = urlsplit(target)
            status, answer = await self.answer(method, url.path, {**parse_qs(body), **parse_qs(url.query)})
            data = (json.dumps(answer) + "\n").encode()
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (status, {200: b"OK", 400: b"Bad Request", 404: b"Not Found",
                                                                  500: b"Internal Server Error"}[status], len(data))
                         + data)
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def answer(self, method, path, parameters):
        if method == "GET" and path == "/modes":
            return 200, self.modes
        if method == "GET" and path == "/connections":
            return 200, {address: {"accepted": self.accepted[address], "open": self.open[address]}
                         for address in self.addresses}
        if method != "POST" or path != "/mode":
            return 404, {"error": f"no {method} {path}: POST /mode?address=A&mode=M, GET /modes, GET /connections"}
        address = normalized(parameters.get("address", [""])[0])
        if address not in self.modes:
            return 400, {"error": f"address: {parameters.get('address', ['(missing)'])[0]} is not one of "
                                  f"{', '.join(self.addresses)}"}
        mode = parameters.get("mode", ["(missing)"])[0]
        if mode not in MODES:
            return 400, {"error": f"mode: {mode} is not one of {', '.join(MODES)}"}
        if mode == "alt_cert" and self.alt_tls is None:
            return 400, {"error": "mode: alt_cert needs --alt-tls"}
        try:
            await self.set_mode(address, mode)
        except OSError as error:
            return 500, {"error": f"cannot listen on {address} port {self.port} again: {error}"}
        return 200, self.modes


def reset(writer):
    """Closes the connection with a TCP RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def drain_until_closed(reader):
    """Reads and drops what the client sends until it closes; answers nothing."""
    while await reader.read(65536):
        pass


async def main(arguments):
    # A client closing mid-handshake makes asyncio log this harmless warning; nothing else is hidden.
    logging.getLogger("asyncio").addFilter(lambda record: "eof_received" not in record.getMessage())
    front = Front(arguments)
    for address in front.addresses:
        await front.listen(address)
    control = await asyncio.start_server(front.control, "127.0.0.1", arguments.control, reuse_address=True)
    print("ready", flush=True)
    async with control:
        await control.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the plain-HTTP S3 server")
    parser.add_argument("--port", required=True, type=int, help="the port every address listens on")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="terminate TLS with this certificate")
    parser.add_argument("--alt-tls", nargs=2, metavar=("CERT", "KEY"), help="the certificate of mode alt_cert")
    parser.add_argument("--control", required=True, type=int, help="port of the control server on 127.0.0.1")
    parser.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IPv4 or IPv6 literals to listen on")
    asyncio.run(main(parser.parse_args()))
