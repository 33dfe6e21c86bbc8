"""A TLS front that changes no byte: terminates TLS and copies the decrypted stream to a plain-HTTP server.

    python3 tls_front.py CERT KEY LISTEN_PORT=UPSTREAM_PORT [LISTEN_PORT=UPSTREAM_PORT ...]

The server-matrix test puts it before plain-HTTP S3 servers so that botocore sends its HTTPS-only forms (aws-chunked
with a trailer) and both clients' requests reach the server exactly as sent. An HTTP proxy such as nginx does not do
that: it reads a small chunked body whole and forwards it with a Content-Length, which hides the difference between
a server that needs the length (411 MissingContentLength) and one that does not. Prints "ready" once listening.
"""
import asyncio
import ssl
import sys

from tcp_proxy import pipe  # the same byte copier, from the script's own folder


async def main(certificate, key, pairs):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)

    def handler(upstream_port):
        async def handle(client_reader, client_writer):
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            except OSError:
                client_writer.close()
                return
            await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        return handle

    servers = [await asyncio.start_server(handler(upstream), "127.0.0.1", listen, ssl=context, backlog=512,
                                          reuse_address=True) for listen, upstream in pairs]
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], sys.argv[2],
                     [tuple(int(port) for port in pair.split("=")) for pair in sys.argv[3:]]))
