"""Where the integration tests' exposition parsers read from: a file, or a scrape of a URL.

Shared by decode_protobuf.py and parse_openmetrics.py (imported from the scripts' own folder, as fault_proxy.py
imports tcp_proxy.py): the same command line (FILE, or --url URL with --header and --timeout) and the same strict
fetch (any HTTP error or unknown Content-Encoding ends the run; gzip is undone; Content-Type goes to stderr).
"""
import argparse
import gzip
import sys
import urllib.error
import urllib.request


def arguments(description):
    """The command line both parsers take; callers may add their own options before parsing."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a file holding the exposition")
    source.add_argument("--url", help="GET the exposition from this URL")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', sent with --url (repeatable)")
    parser.add_argument("--timeout", type=float, default=10, help="seconds for --url (default 10)")
    return parser


def read(args, accept, fail):
    """The exposition's bytes and, when scraped, the answer's Content-Type (None for a file)."""
    if args.url:
        return fetch(args.url, accept, args.header, args.timeout, fail)
    try:
        with open(args.file, "rb") as f:
            return f.read(), None
    except OSError as error:
        fail(str(error))


def fetch(url, accept, headers, timeout, fail):
    request = urllib.request.Request(url, headers={"Accept": accept})
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            fail(f"--header wants 'Name: value', got {header!r}")
        request.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = response.headers.get("Content-Type", "")
            encoding = response.headers.get("Content-Encoding", "")
            body = response.read()
    except urllib.error.HTTPError as error:
        fail(f"GET {url}: HTTP {error.code} {error.reason}: {error.read()[:500]!r}")
    except (urllib.error.URLError, OSError) as error:
        fail(f"GET {url}: {error}")
    print(f"Content-Type: {content_type}", file=sys.stderr)
    if encoding:
        print(f"Content-Encoding: {encoding}", file=sys.stderr)
    if encoding.lower() == "gzip":
        body = gzip.decompress(body)
    elif encoding and encoding.lower() != "identity":
        fail(f"cannot decode Content-Encoding {encoding!r}")
    return body, content_type
