"""A DNS server for the integration tests, answering from a zone file it re-reads on every query.

    python3 dns_server.py ZONE_JSON HOST PORT

Serves UDP and TCP on HOST:PORT (HOST is 127.0.0.1 or ::1) and prints `ready` once both listen. Messages are
parsed and built by dnslib (0.9.26; python3 -m pip install dnslib==0.9.26). ZONE_JSON is read again for every
query, so a test changes the answers by rewriting it atomically (write a temporary file, then rename it):

    {"names": {"s3.canary.test": {"a": ["127.0.0.2", "127.0.0.3"], "aaaa": ["::1"], "ttl": 30}}}

Each name (no case, trailing dot optional) may have
  a, aaaa    the addresses; a name without any of the type asked gets NOERROR with no answer
  ttl        of every record of the name, 30 seconds by default
  cname      a target name: the answer is the CNAME record, then the target's records of the type asked as a
             resolver gives them (followed through the table until a name repeats; a target not in the table is
             NXDOMAIN, one with an rcode gives that code, both with the CNAME records before it)
  rcode      SERVFAIL, NXDOMAIN, REFUSED (or any dnslib RCODE name): that code and no records
  drop       true: the query is never answered, over either transport (a client's timeout)
  truncate   true: over UDP the answer is TC=1 with no records, over TCP it is whole (a client's TCP retry)
A name not in the table is NXDOMAIN. A UDP answer over 512 bytes (or the query's EDNS size) is truncated too.

Every query is appended to ZONE_JSON + ".log" as a JSON line, {"transport": "udp", "name": "s3.canary.test",
"type": "A"} (name as asked, without the trailing dot), before it is answered or dropped, so a test counts the
queries of each transport, name and type: that a truncated answer was asked again over TCP, or that a cached
answer was not asked for at all.
"""
import asyncio
import json
import socket
import sys

from dnslib import CLASS, CNAME, QTYPE, RCODE, RR, A, AAAA, DNSRecord


def key(name):
    """A table key: lowercase, without the trailing dot."""
    return str(name).lower().rstrip(".")


def answer(zone_path, query, transport):
    """The packed answer to a parsed query, or None to drop it."""
    question = query.q
    qtype = QTYPE.get(question.qtype)
    with open(zone_path + ".log", "a") as log:
        log.write(json.dumps({"transport": transport, "name": str(question.qname).rstrip("."), "type": qtype}) + "\n")
    reply = query.reply()
    try:
        with open(zone_path) as file:
            names = {key(name): entry for name, entry in json.load(file)["names"].items()}
        name = key(question.qname)
        entry = names.get(name)
        if entry is not None and entry.get("drop"):
            return None
        if entry is not None and entry.get("truncate") and transport == "udp":
            reply.header.tc = 1
            return reply.pack()
        owner, seen = str(question.qname), set()
        while True:
            if entry is None:
                reply.header.rcode = RCODE.NXDOMAIN
                break
            if "rcode" in entry:
                reply.header.rcode = getattr(RCODE, entry["rcode"])
                break
            seen.add(name)
            ttl = entry.get("ttl", 30)
            if "cname" in entry:
                reply.add_answer(RR(owner, QTYPE.CNAME, CLASS.IN, ttl, CNAME(entry["cname"])))
                owner, name = entry["cname"], key(entry["cname"])
                entry = names.get(name)
                if qtype == "CNAME" or name in seen:
                    break
                continue
            records = {"A": ("a", A), "AAAA": ("aaaa", AAAA)}.get(qtype)
            if records is not None:
                for address in entry.get(records[0], []):
                    reply.add_answer(RR(owner, question.qtype, CLASS.IN, ttl, records[1](address)))
            break
    except Exception as error:
        print(f"dns_server: {error!r}", file=sys.stderr, flush=True)
        reply = query.reply()
        reply.header.rcode = RCODE.SERVFAIL
    packed = reply.pack()
    if transport == "udp":
        limit = max([512] + [rr.rclass for rr in query.ar if rr.rtype == QTYPE.OPT])
        if len(packed) > limit:
            reply = query.reply()
            reply.header.tc = 1
            packed = reply.pack()
    return packed


def parse(data):
    try:
        query = DNSRecord.parse(data)
    except Exception as error:
        print(f"dns_server: unreadable query: {error!r}", file=sys.stderr, flush=True)
        return None
    return query if query.questions else None


class UDPServer(asyncio.DatagramProtocol):
    def __init__(self, zone_path):
        self.zone_path = zone_path

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        query = parse(data)
        packed = query and answer(self.zone_path, query, "udp")
        if packed:
            self.transport.sendto(packed, address)


async def main(zone_path, host, port):
    async def tcp(reader, writer):
        """Queries with their two-byte length prefix (RFC 1035, 4.2.2), as many as the client sends."""
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                query = parse(await reader.readexactly(length))
                if query is None:
                    break
                packed = answer(zone_path, query, "tcp")
                if packed:
                    writer.write(len(packed).to_bytes(2, "big") + packed)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = await asyncio.start_server(tcp, host, port, family=family, reuse_address=True)
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: UDPServer(zone_path), local_addr=(host, port), family=family
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
