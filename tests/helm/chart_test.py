#!/usr/bin/env python3
"""Checks of the Helm chart in helm/medeval.

  chart_test.py values   values.yaml and every examples/*.yaml (merged over the
                         defaults, as helm does) satisfy values.schema.json, and
                         values that are wrong are refused, naming the key
  chart_test.py flags    every medeval flag the templates pass exists in the binary
  chart_test.py helm     `helm lint` and `helm template` (exit 77 = skipped when
                         helm is not installed)

Usage: chart_test.py MODE CHART_DIR [MEDEVAL_BINARY]
"""
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

SKIP = 77


def merge(base, over):
    """Helm's coalescing: maps merge key by key, anything else replaces, null deletes."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def describe(error):
    path = ".".join(str(p) for p in error.absolute_path) or "(top)"
    return f"{path}: {error.message}"


# Values that must be refused, each with a fragment of the key path the error names.
API_POOL = {"name": "gpt4o", "model": "gpt-4o", "api": {"baseUrl": "https://api.example.com/v1"}}
SERVE_POOL = {
    "name": "qwen",
    "model": "Qwen2.5-72B-Instruct",
    "serve": {
        "image": {"repository": "medeval-vllm"},
        "command": "vllm serve /models/q --port {port}",
        "gpus": 4,
    },
}


def pool(base, **changes):
    p = copy.deepcopy(base)
    for key, value in changes.items():
        target = p
        parts = key.split("__")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return p


BAD_VALUES = [
    ("a pool with both serve and api",
     {"workerPools": [dict(SERVE_POOL, api=API_POOL["api"])]}, "workerPools.0"),
    ("a pool with neither serve nor api",
     {"workerPools": [{"name": "x", "model": "x"}]}, "workerPools.0"),
    ("a pool without a model", {"workerPools": [pool(API_POOL, model=None)]}, "workerPools.0"),
    ("a pool name that is no DNS label",
     {"workerPools": [pool(API_POOL, name="GPT_4o")]}, "workerPools.0.name"),
    ("a misspelt key", {"workerPools": [pool(API_POOL, replica=2)]}, "workerPools.0"),
    ("replicas that are not a number",
     {"workerPools": [pool(API_POOL, replicas="two")]}, "workerPools.0.replicas"),
    ("zero GPUs", {"workerPools": [pool(SERVE_POOL, serve__gpus=0)]}, "workerPools.0.serve.gpus"),
    ("a serve command without {port}",
     {"workerPools": [pool(SERVE_POOL, serve__command="vllm serve /m --port 8000")]},
     "workerPools.0.serve.command"),
    ("a serve pool without an image",
     {"workerPools": [pool(SERVE_POOL, serve__image=None)]}, "workerPools.0.serve"),
    ("a model volume without a mount path",
     {"workerPools": [pool(SERVE_POOL, serve__modelVolume={"hostPath": {"path": "/m"}})]},
     "workerPools.0.serve"),
    ("a shared memory size that is no quantity",
     {"workerPools": [pool(SERVE_POOL, serve__shmSize="lots")]}, "workerPools.0.serve.shmSize"),
    ("a base URL without a scheme",
     {"workerPools": [pool(API_POOL, api__baseUrl="api.openai.com/v1")]},
     "workerPools.0.api.baseUrl"),
    ("an API key Secret without its key",
     {"workerPools": [pool(API_POOL, api__apiKeySecret={"name": "openai"})]},
     "workerPools.0.api.apiKeySecret"),
    ("a negative rate limit", {"workerPools": [pool(API_POOL, api__rpm=-5)]},
     "workerPools.0.api.rpm"),
    ("concurrency 0", {"workerPools": [pool(API_POOL, concurrency=0)]},
     "workerPools.0.concurrency"),
    ("an unknown request setting",
     {"workerPools": [pool(API_POOL, request={"temprature": 0})]}, "workerPools.0.request"),
    ("a temperature out of range",
     {"workerPools": [pool(API_POOL, request={"temperature": 3})]},
     "workerPools.0.request.temperature"),
    ("mutual TLS without a client certificate",
     {"security": {"tls": {"existingSecret": "tls", "mutual": True}}}, "security.tls"),
    ("a port out of range", {"coordinator": {"port": 70000}}, "coordinator.port"),
    ("a port given as text", {"coordinator": {"port": "7070"}}, "coordinator.port"),
    ("a storage size that is no quantity",
     {"coordinator": {"persistence": {"size": "20 gigs"}}}, "coordinator.persistence.size"),
    ("an unknown track", {"submit": {"track": "v5-llm"}}, "submit.track"),
    ("a dataset list with commas", {"submit": {"datasets": ["MedExam,MedHG"]}},
     "submit.datasets.0"),
    ("extra args that are not flags", {"coordinator": {"extraArgs": ["rm -rf"]}},
     "coordinator.extraArgs.0"),
    ("empty client labels (would let every pod in)",
     {"networkPolicy": {"clientLabels": {"medeval.io/client": None}}},
     "networkPolicy.clientLabels"),
    ("an unknown top-level key", {"workers": []}, "(top)"),
]


def check_values(chart):
    schema = json.load(open(os.path.join(chart, "values.schema.json"), encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    defaults = load_yaml(os.path.join(chart, "values.yaml"))
    failures = []

    good = [("values.yaml", defaults)]
    for path in sorted(glob.glob(os.path.join(chart, "examples", "*.yaml"))):
        good.append((os.path.relpath(path, chart), merge(defaults, load_yaml(path))))
    good.append(("an API pool and a serve pool",
                 merge(defaults, {"workerPools": [API_POOL, SERVE_POOL]})))
    for name, values in good:
        errors = [describe(e) for e in validator.iter_errors(values)]
        if errors:
            failures.append(f"{name} should be valid: " + "; ".join(errors))
        else:
            print(f"ok: {name} is valid")
    if len(good) < 3:
        failures.append("expected at least one example in examples/")

    for what, override, where in BAD_VALUES:
        errors = [describe(e) for e in validator.iter_errors(merge(defaults, override))]
        if not errors:
            failures.append(f"{what}: accepted, should be refused")
        elif not any(e.startswith(where) for e in errors):
            failures.append(f"{what}: refused, but not at {where}: {errors}")
        else:
            print(f"ok: refused {what}: {errors[0]}")
    return failures


def template_flags(chart):
    """(file, subcommand, flag) for every `- --flag` under a medeval subcommand."""
    found = []
    for path in sorted(glob.glob(os.path.join(chart, "templates", "*"))):
        sub = None
        for line in open(path, encoding="utf-8"):
            m = re.match(r"\s*- (coordinator|worker|submit)\s*$", line)
            if m:
                sub = m.group(1)
                continue
            m = re.match(r"\s*- (--[a-z][a-z0-9-]*)", line)
            if m and sub:
                found.append((os.path.basename(path), sub, m.group(1)))
    return found


def help_flags(binary, sub):
    out = subprocess.run([binary, sub, "--help"], capture_output=True, text=True, check=True)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))


def check_flags(chart, binary):
    failures = []
    known = {}
    found = template_flags(chart)
    subs = {s for _, s, _ in found}
    if subs != {"coordinator", "worker", "submit"}:
        failures.append(f"expected coordinator, worker and submit commands, found {sorted(subs)}")
    for path, sub, flag in found:
        if sub not in known:
            known[sub] = help_flags(binary, sub)
        if flag not in known[sub]:
            failures.append(f"{path}: `medeval {sub}` has no flag {flag}")
    print(f"checked {len(found)} flags in the templates")
    return failures


def check_helm(chart):
    helm = shutil.which("helm")
    if helm is None:
        print("helm is not installed: skipping helm lint and helm template")
        return None
    failures = []
    defaults = os.path.join(chart, "values.yaml")
    runs = [["lint", chart, "--strict"]]
    for path in [defaults] + sorted(glob.glob(os.path.join(chart, "examples", "*.yaml"))):
        runs.append(["lint", chart, "--strict", "-f", path])
        runs.append(["template", "medbench", chart, "-f", path])
    for args in runs:
        r = subprocess.run([helm] + args, capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"helm {' '.join(args)}: {r.stdout}{r.stderr}")
        else:
            print(f"ok: helm {' '.join(args[:1] + args[-2:])}")
    with tempfile.TemporaryDirectory() as tmp:
        for what, override, _ in BAD_VALUES:
            bad = os.path.join(tmp, "bad.yaml")
            with open(bad, "w", encoding="utf-8") as f:
                yaml.safe_dump(override, f)
            r = subprocess.run([helm, "template", "x", chart, "-f", bad],
                               capture_output=True, text=True)
            if r.returncode == 0:
                failures.append(f"helm template accepted {what}")
    return failures


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, chart = sys.argv[1], sys.argv[2]
    if mode == "values":
        failures = check_values(chart)
    elif mode == "flags":
        failures = check_flags(chart, sys.argv[3])
    elif mode == "helm":
        failures = check_helm(chart)
        if failures is None:
            return SKIP
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
