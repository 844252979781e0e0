#!/usr/bin/python3
"""What a pod of the Deployment that `pqmtls export k8s` writes would see, for the tests.

    k8s_volume.py files MANIFEST OUT
        Writes into OUT the files the Deployment's volume mount gets from the Secret and
        ConfigMap documents of MANIFEST, as the kubelet would: the volume's sources (a
        projected volume's secret and configMap sources, or a secret or configMap volume),
        their items at their paths (every key when a source lists none), Secret data
        base64-decoded, ConfigMap data as text, files with the volume's defaultMode.
        Prints the container's mountPath of that volume.

    k8s_volume.py argv MANIFEST WHICH
        Prints, one argument per line, the container's command followed by its args
        (WHICH = container) or a probe's exec command (WHICH = livenessProbe or
        readinessProbe).
"""
import base64
import os
import sys

import yaml


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise SystemExit(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def source_files(docs, src):
    """(path, bytes) of one volume source: {"secret": {...}} or {"configMap": {...}}."""
    if "secret" in src:
        ref = src["secret"]
        obj = one(docs, "Secret", ref.get("name", ref.get("secretName")))
        data = {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
    elif "configMap" in src:
        ref = src["configMap"]
        obj = one(docs, "ConfigMap", ref["name"])
        data = {k: v.encode() for k, v in obj.get("data", {}).items()}
    else:
        raise SystemExit(f"unsupported volume source {sorted(src)}")
    items = ref.get("items") or [{"key": k, "path": k} for k in sorted(data)]
    for it in items:
        if it["key"] not in data:
            raise SystemExit(f"{it['key']} is not in {obj['kind']} {obj['metadata']['name']}")
        yield it["path"], data[it["key"]], it.get("mode")


def pod(docs):
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    if len(spec["containers"]) != 1:
        raise SystemExit("expected one container")
    return spec, spec["containers"][0]


def write_files(manifest, out):
    docs = documents(manifest)
    spec, c = pod(docs)
    mount = c["volumeMounts"][0]
    vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    if "projected" in vol:
        mode = vol["projected"].get("defaultMode", 0o644)
        sources = vol["projected"]["sources"]
    else:
        key = "secret" if "secret" in vol else "configMap"
        mode = vol[key].get("defaultMode", 0o644)
        sources = [{key: vol[key]}]
    for src in sources:
        for path, data, item_mode in source_files(docs, src):
            dest = os.path.join(out, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(data)
            os.chmod(dest, item_mode if item_mode is not None else mode)
    print(mount["mountPath"])


def argv_of(manifest, which):
    _, c = pod(documents(manifest))
    args = c.get("command", []) + c.get("args", []) if which == "container" else c[which]["exec"]["command"]
    for a in args:
        print(a)


def main(argv):
    if len(argv) == 4 and argv[1] == "files":
        write_files(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "argv":
        argv_of(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
