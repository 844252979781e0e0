#!/usr/bin/python3
"""Validates every document of multi-document YAML files against tests/schemas.

    schema_check.py FILE...

Prints one line per error and exits 1 when there is any; prints each document's kind
and name and exits 0 when all are valid. Debian 12's python3-yaml and python3-jsonschema.
"""
import json
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2] / "schemas"
DIRS = [ROOT / "kubernetes" / "v1.32.2-standalone-strict", ROOT / "istio"]


def strict(schema):
    """additionalProperties: false where an object lists properties and allows others."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and "x-kubernetes-preserve-unknown-fields" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def schema_for(doc):
    group, _, version = doc["apiVersion"].rpartition("/")
    name = "-".join(filter(None, [doc["kind"].lower(), group.split(".")[0], version])) + ".json"
    for d in DIRS:
        if (d / name).exists():
            schema = json.loads((d / name).read_text())
            if d.name == "istio":
                # metadata is the API server's: the Istio schemas do not describe it
                schema = strict(schema)
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["properties"].setdefault("apiVersion", {"type": "string"})
                schema["properties"].setdefault("kind", {"type": "string"})
            return schema, name
    return None, name


def errors_of(path):
    errors, seen = [], []
    for doc in filter(None, yaml.safe_load_all(pathlib.Path(path).read_text())):
        where = f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        schema, name = schema_for(doc)
        if schema is None:
            errors.append(f"{where}: no schema {name}")
            continue
        v = jsonschema.Draft7Validator(schema)
        errors += [f"{where} /{'/'.join(map(str, e.path))}: {e.message}" for e in v.iter_errors(doc)]
        seen.append(where)
    return errors, seen


def main():
    errors, seen = [], []
    for path in sys.argv[1:]:
        e, s = errors_of(path)
        errors += e
        seen += s
    for line in errors or seen:
        print(line)
    return 1 if errors or not seen else 0


if __name__ == "__main__":
    sys.exit(main())
