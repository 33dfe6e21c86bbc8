"""Decodes a Prometheus protobuf exposition strictly: the independent protobuf parser of the integration tests.

    python3 decode_protobuf.py [--check] FILE
    python3 decode_protobuf.py [--check] --url URL [--header 'Name: value']... [--timeout SECONDS]

The input is `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`: a
stream of MetricFamily messages, each preceded by its length as a varint. The Python module is generated at run time
with `protoc --python_out` from metrics.proto beside this file (Debian's protobuf-compiler; libprotobuf-dev gives
google/protobuf/timestamp.proto), so the schema is Prometheus's own and not ours.

Prints JSON to stdout: a list of families, each `MessageToDict(family, preserving_proto_field_name=True)` (so 64-bit
integers such as sample_count are strings, and NaN/Inf are "NaN"/"Infinity"/"-Infinity", as in protobuf's JSON
mapping). With --url, the response's Content-Type goes to stderr, and an answer that is not the delimited protobuf
format is an error. Decoding is strict: a truncated length or message, trailing bytes, a field that the schema does
not know (or a known field with the wrong wire type) exit 1 with the reason.

--check also validates every family (the JSON is printed first; the violations go to stderr, then exit 1):
each metric carries the field its family's type names; native histograms (those with a schema field): schema in
[-4, 8], zero_threshold >= 0, spans after the first have offsets >= 0, span lengths add up to the number of
deltas (or counts), bucket counts reconstructed from deltas are >= 0, and zero_count + all bucket counts ==
sample_count (<= when sample_sum is NaN, as Prometheus allows: NaN observations are counted in no bucket); classic
buckets: upper bounds strictly increasing, cumulative counts non-decreasing and <= sample_count, a +Inf bucket's
count == sample_count; every exemplar: label names and values together at most 128 UTF-8 characters, and the
native-histogram `exemplars` have a timestamp.
"""
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import exposition_source  # the shared command line and fetch, from this script's own folder

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "metrics.proto")
ACCEPT = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
INCLUDE_DIRS = ["/usr/include", "/usr/local/include"]
EXEMPLAR_MAX_LABEL_LENGTH = 128


def fail(message):
    print(f"decode_protobuf: {message}", file=sys.stderr)
    sys.exit(1)


def generated_module():
    """protoc --python_out into a temporary directory, imported from there."""
    protoc = shutil.which("protoc")
    if protoc is None:
        fail("protoc not found (Debian package protobuf-compiler)")
    includes = [d for d in INCLUDE_DIRS if os.path.isfile(os.path.join(d, "google/protobuf/timestamp.proto"))]
    if not includes:
        fail("google/protobuf/timestamp.proto not found in " + ", ".join(INCLUDE_DIRS) + " (Debian package libprotobuf-dev)")
    with tempfile.TemporaryDirectory(prefix="decode-protobuf-") as out:
        command = [protoc, f"-I{HERE}", f"-I{includes[0]}", f"--python_out={out}", PROTO]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"protoc failed ({' '.join(command)}): {result.stderr.strip()}")
        sys.path.insert(0, out)
        try:
            return importlib.import_module("metrics_pb2")
        finally:
            sys.path.remove(out)


def check_content_type(content_type):
    mime, *params = [part.strip() for part in content_type.split(";")]
    params = dict(p.split("=", 1) for p in params if "=" in p)
    params = {k.strip().lower(): v.strip().strip('"') for k, v in params.items()}
    if (mime.lower() != "application/vnd.google.protobuf"
            or params.get("proto") != "io.prometheus.client.MetricFamily"
            or params.get("encoding") != "delimited"):
        fail(f"the server answered Content-Type {content_type!r}, not the delimited protobuf format")


def read_varint(data, pos):
    """(value, next position) of the varint at pos; fails on a truncated or over-long one."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            fail(f"truncated length prefix at byte {pos} (stream ends inside the varint)")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    fail(f"length prefix at byte {pos} is longer than 10 bytes")


def unknown_fields(message, path, found):
    """Paths of fields the schema does not know (or known numbers with the wrong wire type), in message and below."""
    from google.protobuf import unknown_fields as uf
    for field in uf.UnknownFieldSet(message):
        found.append(f"{path}: unknown field number {field.field_number} (wire type {field.wire_type})")
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        # is_repeated: protobuf >= 5.29; older runtimes only have label.
        repeated = descriptor.is_repeated if hasattr(descriptor, "is_repeated") else descriptor.label == descriptor.LABEL_REPEATED
        if repeated:
            for index, item in enumerate(value):
                unknown_fields(item, f"{path}.{descriptor.name}[{index}]", found)
        else:
            unknown_fields(value, f"{path}.{descriptor.name}", found)
    return found


def decode(data, pb):
    from google.protobuf.message import DecodeError
    families = []
    pos = 0
    while pos < len(data):
        start = pos
        length, pos = read_varint(data, pos)
        if pos + length > len(data):
            fail(f"truncated message #{len(families) + 1} at byte {start}: its prefix says {length} bytes, "
                 f"{len(data) - pos} remain")
        family = pb.MetricFamily()
        try:
            family.ParseFromString(data[pos:pos + length])
        except DecodeError as error:
            fail(f"message #{len(families) + 1} at byte {start} ({length} bytes) does not decode: {error}")
        unknown = unknown_fields(family, f"message #{len(families) + 1} ({family.name or 'no name'})", [])
        if unknown:
            fail("fields outside the schema: " + "; ".join(unknown))
        families.append(family)
        pos += length
    return families


# --check


def where(family, metric):
    labels = ",".join(f'{l.name}="{l.value}"' for l in metric.label)
    return f"{family.name}{{{labels}}}"


def check_exemplar(exemplar, context, problems, need_timestamp=False):
    length = sum(len(l.name) + len(l.value) for l in exemplar.label)
    if length > EXEMPLAR_MAX_LABEL_LENGTH:
        problems.append(f"{context}: exemplar labels are {length} UTF-8 characters, more than "
                        f"{EXEMPLAR_MAX_LABEL_LENGTH}")
    if need_timestamp and not exemplar.HasField("timestamp"):
        problems.append(f"{context}: native-histogram exemplar has no timestamp")


def check_native_side(h, side, context, problems):
    """Total count of one side (positive or negative) of a native histogram, after checking its spans."""
    spans = getattr(h, f"{side}_span")
    deltas = list(getattr(h, f"{side}_delta"))
    counts = list(getattr(h, f"{side}_count"))
    for n, span in enumerate(spans):
        if n > 0 and span.offset < 0:
            problems.append(f"{context}: {side} span #{n + 1} has offset {span.offset} (only the first may be negative)")
    expected = sum(span.length for span in spans)
    if deltas and counts:
        problems.append(f"{context}: both {side}_delta and {side}_count are set")
    if counts:
        if len(counts) != expected:
            problems.append(f"{context}: {side} spans cover {expected} buckets but there are {len(counts)} {side}_count")
        for index, count in enumerate(counts):
            if not count >= 0:
                problems.append(f"{context}: {side} bucket #{index} has count {count}")
        return sum(counts)
    if len(deltas) != expected:
        problems.append(f"{context}: {side} spans cover {expected} buckets but there are {len(deltas)} {side}_delta")
    running = 0
    total = 0
    for index, delta in enumerate(deltas):
        running += delta
        if running < 0:
            problems.append(f"{context}: {side} bucket #{index} has count {running} (from deltas {deltas})")
        total += running
    return total


def check_histogram(family, metric, problems):
    h = metric.histogram
    context = where(family, metric)
    is_float = h.sample_count_float > 0 or h.zero_count_float > 0 or h.positive_count or h.negative_count
    sample_count = h.sample_count_float if h.sample_count_float > 0 else h.sample_count
    if h.HasField("schema"):
        if not -4 <= h.schema <= 8:
            problems.append(f"{context}: schema {h.schema} is outside [-4, 8]")
        if not h.zero_threshold >= 0:
            problems.append(f"{context}: zero_threshold {h.zero_threshold} is not >= 0")
        zero = h.zero_count_float if h.zero_count_float > 0 else h.zero_count
        buckets = zero
        buckets += check_native_side(h, "positive", context, problems)
        buckets += check_native_side(h, "negative", context, problems)
        if math.isnan(h.sample_sum):
            if buckets > sample_count:
                problems.append(f"{context}: zero_count + buckets = {buckets} > sample_count {sample_count} "
                                f"(sample_sum is NaN)")
        elif (not math.isclose(buckets, sample_count, rel_tol=1e-9)) if is_float else buckets != sample_count:
            problems.append(f"{context}: zero_count + buckets = {buckets} != sample_count {sample_count}")
        for index, exemplar in enumerate(h.exemplars):
            check_exemplar(exemplar, f"{context} exemplars[{index}]", problems, need_timestamp=True)
    previous_bound = None
    previous_count = 0
    for index, bucket in enumerate(h.bucket):
        bucket_context = f"{context} bucket #{index} (le={bucket.upper_bound})"
        count = bucket.cumulative_count_float if bucket.cumulative_count_float > 0 else bucket.cumulative_count
        if math.isnan(bucket.upper_bound):
            problems.append(f"{bucket_context}: upper_bound is NaN")
        elif previous_bound is not None and not bucket.upper_bound > previous_bound:
            problems.append(f"{bucket_context}: upper_bound not above the previous {previous_bound}")
        if count < previous_count:
            problems.append(f"{bucket_context}: cumulative count {count} below the previous {previous_count}")
        if count > sample_count:
            problems.append(f"{bucket_context}: cumulative count {count} above sample_count {sample_count}")
        if bucket.upper_bound == math.inf and count != sample_count:
            problems.append(f"{bucket_context}: +Inf bucket count {count} != sample_count {sample_count}")
        if bucket.HasField("exemplar"):
            check_exemplar(bucket.exemplar, bucket_context, problems)
        previous_bound = bucket.upper_bound
        previous_count = count


def check(families, pb):
    field_for_type = {pb.COUNTER: "counter", pb.GAUGE: "gauge", pb.SUMMARY: "summary", pb.UNTYPED: "untyped",
                      pb.HISTOGRAM: "histogram", pb.GAUGE_HISTOGRAM: "histogram"}
    problems = []
    for family in families:
        if not family.name:
            problems.append("a family has no name")
        expected = field_for_type.get(family.type)
        for metric in family.metric:
            present = [d.name for d, _ in metric.ListFields()
                       if d.name in ("counter", "gauge", "summary", "untyped", "histogram")]
            if present != [expected]:
                problems.append(f"{where(family, metric)}: family type {pb.MetricType.Name(family.type)} wants "
                                f"field {expected}, metric has {present}")
            if metric.HasField("counter") and metric.counter.HasField("exemplar"):
                check_exemplar(metric.counter.exemplar, where(family, metric), problems)
            if metric.HasField("histogram"):
                check_histogram(family, metric, problems)
    return problems


def main():
    parser = exposition_source.arguments(__doc__)
    parser.add_argument("--check", action="store_true", help="also validate histogram and exemplar invariants")
    args = parser.parse_args()
    data, content_type = exposition_source.read(args, ACCEPT, fail)
    if content_type is not None:
        check_content_type(content_type)

    pb = generated_module()
    from google.protobuf.json_format import MessageToDict
    families = decode(data, pb)
    json.dump([MessageToDict(f, preserving_proto_field_name=True) for f in families], sys.stdout, indent=1,
              allow_nan=False)
    print()
    if args.check:
        problems = check(families, pb)
        for problem in problems:
            print(f"CHECK FAILED: {problem}", file=sys.stderr)
        if problems:
            sys.exit(1)


if __name__ == "__main__":
    main()
