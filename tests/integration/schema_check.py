"""tests/integration/schema_check.py: a small JSON Schema validator for the
subset of draft 2020-12 that schemas/*.json use (type, enum, const,
required, properties, additionalProperties, items, minimum, maximum,
minLength, maxLength, pattern, not, $ref to #/$defs, allOf, anyOf, oneOf, if/then/else).

Python's standard library has no JSON Schema validator and tests may not
download one, so integration tests validate witpipe's JSON outputs with
this. validate() returns a list of error strings (empty when valid).
"""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _is_type(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, _TYPES[t])


def _resolve(root, ref):
    if not ref.startswith("#/"):
        raise ValueError("only local $ref supported: " + ref)
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check(root, s, v, path, errs):
    if s is True or s == {}:
        return
    if s is False:
        errs.append(f"{path}: not allowed")
        return
    if "$ref" in s:
        _check(root, _resolve(root, s["$ref"]), v, path, errs)
    t = s.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not any(_is_type(v, x) for x in ts):
            errs.append(f"{path}: expected {t}, got {type(v).__name__}")
            return
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{path}: {v!r} not in {s['enum']}")
    if "const" in s and v != s["const"]:
        errs.append(f"{path}: {v!r} != {s['const']!r}")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            errs.append(f"{path}: {v} < {s['minimum']}")
        if "maximum" in s and v > s["maximum"]:
            errs.append(f"{path}: {v} > {s['maximum']}")
    if isinstance(v, str):
        if "minLength" in s and len(v) < s["minLength"]:
            errs.append(f"{path}: shorter than {s['minLength']}")
        if "maxLength" in s and len(v) > s["maxLength"]:
            errs.append(f"{path}: longer than {s['maxLength']}")
        if "pattern" in s and not re.search(s["pattern"], v):
            errs.append(f"{path}: {v!r} does not match {s['pattern']}")
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errs.append(f"{path}: missing {k}")
        props = s.get("properties", {})
        for k, sub in props.items():
            if k in v:
                _check(root, sub, v[k], f"{path}.{k}", errs)
        extra = s.get("additionalProperties", True)
        for k in v:
            if k not in props:
                if extra is False:
                    errs.append(f"{path}: unexpected property {k}")
                elif isinstance(extra, dict):
                    _check(root, extra, v[k], f"{path}.{k}", errs)
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            _check(root, s["items"], x, f"{path}[{i}]", errs)
    for sub in s.get("allOf", []):
        _check(root, sub, v, path, errs)
    if "anyOf" in s:
        if not any(not _sub_errs(root, sub, v, path) for sub in s["anyOf"]):
            errs.append(f"{path}: matches none of anyOf")
    if "oneOf" in s:
        n = sum(1 for sub in s["oneOf"] if not _sub_errs(root, sub, v, path))
        if n != 1:
            errs.append(f"{path}: matches {n} of oneOf")
    if "not" in s and not _sub_errs(root, s["not"], v, path):
        errs.append(f"{path}: matches a schema it must not")
    if "if" in s:
        if not _sub_errs(root, s["if"], v, path):
            if "then" in s:
                _check(root, s["then"], v, path, errs)
        elif "else" in s:
            _check(root, s["else"], v, path, errs)


def _sub_errs(root, s, v, path):
    e = []
    _check(root, s, v, path, e)
    return e


def load_schema(name):
    with open(os.path.join(ROOT, "schemas", name)) as f:
        return json.load(f)


def validate(schema, value):
    """Returns the list of violations of value against schema (a dict or a
    file name under schemas/)."""
    if isinstance(schema, str):
        schema = load_schema(schema)
    errs = []
    _check(schema, schema, value, "$", errs)
    return errs
