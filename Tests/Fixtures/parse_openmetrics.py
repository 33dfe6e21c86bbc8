"""Parses OpenMetrics text strictly: the independent OpenMetrics parser of the integration tests.

    python3 parse_openmetrics.py FILE
    python3 parse_openmetrics.py --url URL [--header 'Name: value']... [--timeout SECONDS]

Parses with prometheus_client's strict OpenMetrics parser (openmetrics.parser.text_fd_to_metric_families, what
text_string_to_metric_families runs, fed line by line so that an error names its line), which raises on what OpenMetrics
forbids (a missing or early `# EOF`, a blank line, a counter sample without `_total`, exemplar labels over 128
characters, a histogram without `+Inf` bucket, ...). With --url it sends
`Accept: application/openmetrics-text; version=1.0.0` and prints the response's Content-Type to stderr; an answer
that is not application/openmetrics-text is an error.

Prints JSON to stdout: a list of families {name, type, help, unit, samples: [{name, labels, value, timestamp,
exemplar: null or {labels, value, timestamp}}]}; timestamps are seconds (a float) or null; the values NaN, +Inf and
-Inf are the strings "NaN", "Infinity", "-Infinity" (as protobuf's JSON mapping writes them), so the output is strict
JSON. A sample that is a native histogram also has "native_histogram". Any parse error: exit 1 with the error.
"""
import json
import math
import sys

import exposition_source  # the shared command line and fetch, from this script's own folder

ACCEPT = "application/openmetrics-text; version=1.0.0"


def fail(message):
    print(f"parse_openmetrics: {message}", file=sys.stderr)
    sys.exit(1)


def number(value):
    if value is None:  # a native-histogram sample has no plain value
        return None
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def timestamp(value):
    return None if value is None else float(value)  # prometheus_client's Timestamp converts to float seconds


class Lines:
    """The text's lines, remembering the last one the parser read, to say where an error was found."""

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)
        self.read = 0

    def __iter__(self):
        for line in self.lines:
            self.read += 1
            yield line


def main():
    args = exposition_source.arguments(__doc__).parse_args()
    data, content_type = exposition_source.read(args, ACCEPT, fail)
    if content_type is not None and content_type.split(";")[0].strip().lower() != "application/openmetrics-text":
        fail(f"the server answered Content-Type {content_type!r}, not OpenMetrics text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        fail(f"not UTF-8: {error}")

    from prometheus_client.openmetrics.parser import text_fd_to_metric_families  # what text_string_to_metric_families runs
    lines = Lines(text)
    try:
        # A generator: errors such as a missing # EOF only come at the end, so read it all before printing.
        families = list(text_fd_to_metric_families(lines))
    except Exception as error:  # the parser raises bare ValueErrors, and others (KeyError, IndexError) on some input
        line = lines.lines[lines.read - 1].rstrip("\n") if lines.read else ""
        fail(f"{type(error).__name__}: {error or '(no message)'} (after reading line {lines.read}: {line!r})")

    out = []
    for family in families:
        samples = []
        for s in family.samples:
            sample = {"name": s.name, "labels": dict(s.labels or {}), "value": number(s.value),
                      "timestamp": timestamp(s.timestamp), "exemplar": None}
            if s.exemplar is not None:
                sample["exemplar"] = {"labels": dict(s.exemplar.labels), "value": number(s.exemplar.value),
                                      "timestamp": timestamp(s.exemplar.timestamp)}
            if s.native_histogram is not None:
                nh = s.native_histogram
                sample["native_histogram"] = {
                    "count": number(nh.count_value), "sum": number(nh.sum_value), "schema": nh.schema,
                    "zero_threshold": number(nh.zero_threshold), "zero_count": number(nh.zero_count),
                    "positive_spans": [list(x) for x in nh.pos_spans or []],
                    "negative_spans": [list(x) for x in nh.neg_spans or []],
                    "positive_deltas": list(nh.pos_deltas or []), "negative_deltas": list(nh.neg_deltas or []),
                    "exemplars": [{"labels": dict(e.labels), "value": number(e.value), "timestamp": timestamp(e.timestamp)}
                                  for e in nh.nh_exemplars or []],
                }
            samples.append(sample)
        out.append({"name": family.name, "type": family.type, "help": family.documentation, "unit": family.unit,
                    "samples": samples})
    json.dump(out, sys.stdout, indent=1, allow_nan=False)
    print()


if __name__ == "__main__":
    main()
