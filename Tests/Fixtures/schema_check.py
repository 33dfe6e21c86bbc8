"""Checks YAML configurations against s3-canary's JSON Schema (Config/s3-canary.schema.json) with Python jsonschema.

    python3 schema_check.py SCHEMA FILE [FILE ...]

A FILE that is a Kubernetes manifest (documents with `kind`) is checked by the configuration its ConfigMaps carry
under `s3-canary.yaml`. Prints one JSON line per configuration: {"file", "errors": [{"path", "message"}]}, the path
as check-config writes it (`backends[0].max_addresses`). ConfigSchemaTests reads it. Exits 2 on a schema that is not
valid draft 2020-12 itself.
"""
import json
import sys

import jsonschema
import yaml


def path_of(error):
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def main(schema_path, files):
    schema = json.load(open(schema_path, encoding="utf-8"))
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        print(f"not a valid draft 2020-12 schema: {error.message}", file=sys.stderr)
        sys.exit(2)
    validator = jsonschema.Draft202012Validator(schema)
    for name in files:
        documents = [d for d in yaml.safe_load_all(open(name, encoding="utf-8")) if d is not None]
        configurations = []
        for document in documents:
            if isinstance(document, dict) and "kind" in document:
                if document["kind"] == "ConfigMap" and "s3-canary.yaml" in document.get("data", {}):
                    configurations.append(yaml.safe_load(document["data"]["s3-canary.yaml"]))
            else:
                configurations.append(document)
        for configuration in configurations:
            errors = [{"path": path_of(e), "message": e.message} for e in validator.iter_errors(configuration)]
            print(json.dumps({"file": name, "errors": errors}))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2:])
