"""A loopback TCP proxy for fault injection in the integration tests.

    python3 tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT

Forwards every connection to the target until killed. Killing it makes the port refuse connections, which is
how the tests make one backend unreachable while the real RGW stays up for the others.
"""
import asyncio
import sys


async def pipe(reader, writer):
    """Copies bytes from reader to writer until either side ends (fault_proxy.py uses it too)."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(listen_port, host, port):
    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=512, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
