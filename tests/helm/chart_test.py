#!/usr/bin/env python3
"""Checks of the Helm chart in helm/medeval.

  chart_test.py values   values.yaml and every examples/*.yaml (merged over the
                         defaults, as helm does) satisfy values.schema.json, and
                         values that are wrong are refused, naming the key
  chart_test.py flags    every medeval flag on the rendered command lines (all
                         scenarios of scenarios.py) exists in the binary's --help
  chart_test.py helm     `helm lint --strict`, `helm template` of every scenario,
                         each rendered object validated against the Kubernetes
                         API schema, and the values that must be refused

helm is the one on PATH, else the offline one beside the source tree (render.py);
flags and helm exit 77 (skipped) only when neither can run.

Usage: chart_test.py MODE CHART_DIR [MEDEVAL_BINARY]
"""
import copy
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render  # noqa: E402
import scenarios  # noqa: E402
from scenarios import API_POOL, SERVE_POOL  # noqa: E402

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
    ("concurrency neither auto nor a number", {"workerPools": [pool(API_POOL, concurrency="fast")]},
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
    ("a storage size given as a number (it would be read as bytes)",
     {"coordinator": {"persistence": {"size": 20}}}, "coordinator.persistence.size"),
    ("a PodDisruptionBudget that is no number or percentage",
     {"workerPools": [pool(API_POOL, podDisruptionBudget={"minAvailable": "half"})]},
     "workerPools.0.podDisruptionBudget.minAvailable"),
    ("a submit wait that is no duration", {"submit": {"waitForCoordinator": "10"}},
     "submit.waitForCoordinator"),
    ("an unknown onUpgrade", {"submit": {"onUpgrade": "always"}}, "submit.onUpgrade"),
    ("a volume mount without a path",
     {"workerDefaults": {"extraVolumeMounts": [{"name": "x"}]}},
     "workerDefaults.extraVolumeMounts.0"),
    ("a toleration with a misspelt key",
     {"coordinator": {"tolerations": [{"key": "a", "operater": "Exists"}]}},
     "coordinator.tolerations.0"),
    ("a spread constraint without a topologyKey",
     {"submit": {"topologySpreadConstraints": [{"maxSkew": 1,
                                                "whenUnsatisfiable": "DoNotSchedule"}]}},
     "submit.topologySpreadConstraints.0"),
    ("a runtimeClassName on an API pool",
     {"workerPools": [pool(API_POOL, api__runtimeClassName="nvidia")]}, "workerPools.0"),
    ("a nameOverride that cannot be in an object name", {"nameOverride": "Med_Eval"},
     "nameOverride"),
    ("a fullnameOverride that cannot be an object name", {"fullnameOverride": "-medeval"},
     "fullnameOverride"),
    ("a fullnameOverride that cannot start a Service name", {"fullnameOverride": "0777"},
     "fullnameOverride"),
    ("a Secret name that is no object name",
     {"security": {"token": {"existingSecret": "My Token"}}}, "security.token.existingSecret"),
    ("a Secret key with a space", {"security": {"token": {"key": "my token"}}},
     "security.token.key"),
    ("an API key Secret key with a colon",
     {"workerPools": [pool(API_POOL, api__apiKeySecret={"name": "openai", "key": "a:b"})]},
     "workerPools.0.api.apiKeySecret.key"),
    ("a TLS server name that is no host name",
     {"security": {"tls": {"serverName": "coordinator: 1"}}}, "security.tls.serverName"),
    ("a runtimeClassName that is no object name",
     {"workerPools": [pool(SERVE_POOL, serve__runtimeClassName="Nvidia GPU")]},
     "workerPools.0.serve.runtimeClassName"),
    ("a storage class that is no object name",
     {"coordinator": {"persistence": {"storageClass": "fast ssd"}}},
     "coordinator.persistence.storageClass"),
    ("Recreate with rollingUpdate settings (Kubernetes refuses them)",
     {"workerPools": [pool(API_POOL, strategy={"type": "Recreate",
                                               "rollingUpdate": {"maxSurge": 1}})]},
     "workerPools.0.strategy"),
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
    good.append(("every production setting", merge(defaults, scenarios.PRODUCTION)))
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


def help_flags(binary, sub):
    out = subprocess.run([binary, sub, "--help"], capture_output=True, text=True, check=True)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))


def check_flags(chart, binary):
    """Every flag on a rendered medeval command line is one the binary has."""
    helm = render.Helm(chart)
    failures, known, checked = [], {}, set()
    for name, values, release, args, _ in scenarios.renderings(chart):
        rc, objs, _, err, _ = helm.template(values, release, args)
        if rc != 0:
            failures.append(f"{name}: helm template failed: {err}")
            continue
        for obj, sub, flag in scenarios.flags_of(objs):
            if sub not in known:
                known[sub] = help_flags(binary, sub)
            checked.add((sub, flag))
            if flag not in known[sub]:
                failures.append(f"{name}: {obj}: `medeval {sub}` has no flag {flag}")
    subs = {s for s, _ in checked}
    if subs != {"coordinator", "worker", "submit"}:
        failures.append(f"expected coordinator, worker and submit commands, found {sorted(subs)}")
    print(f"checked {len(checked)} distinct flags on the rendered command lines: "
          + " ".join(sorted(f"{s}:{f}" for s, f in checked)))
    return failures


def check_helm(chart):
    helm = render.Helm(chart)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        production = os.path.join(tmp, "production.yaml")
        with open(production, "w", encoding="utf-8") as f:
            yaml.safe_dump(scenarios.PRODUCTION, f)
        for path in [None, production] + sorted(glob.glob(os.path.join(chart, "examples", "*.yaml"))):
            r = helm.lint([path] if path else [])
            what = f"helm lint --strict {os.path.basename(path) if path else ''}".strip()
            if r.returncode != 0:
                failures.append(f"{what}: {r.stdout}{r.stderr}")
            else:
                print(f"ok: {what}")

    rendered = {}
    for name, values, release, args, check in scenarios.renderings(chart):
        rc, objs, text, err, _ = helm.template(values, release, args)
        if rc != 0:
            failures.append(f"{name}: helm template failed: {err}")
            continue
        rendered[name] = text
        c = scenarios.Checks()
        scenarios.check_objects(c, name, objs)
        if check:
            c.run(name, check, objs)
        failures += c.failures
        print(f"{'FAIL' if c.failures else 'ok'}: {name} ({len(objs)} objects)")
    failures += helm.validate(rendered)

    # Two renderings compared: only the changed pool restarts.
    gpu_api = scenarios.with_pools(SERVE_POOL, API_POOL)
    rpm = copy.deepcopy(gpu_api)
    rpm["workerPools"][1]["api"]["rpm"] = 100
    zero = scenarios.with_pools(dict(API_POOL, replicas=0), SERVE_POOL,
                                workerDefaults={"replicas": 3})
    c = scenarios.Checks()
    r1, before, _, e1, _ = helm.template(gpu_api)
    r2, after, _, e2, _ = helm.template(rpm)
    if c.expect(r1 == 0 and r2 == 0, f"helm template: {e1}{e2}"):
        c.run("per-pool checksums", scenarios.check_checksums, before, after)
    r3, objs, _, e3, notes = helm.template(zero, notes=True)
    if c.expect(r3 == 0, f"helm template: {e3}"):
        c.run("replicas 0", scenarios.check_replicas_zero, objs, notes)
    # The port-forward NOTES shows reaches both ports, whatever the Service type.
    for svc_type in ("ClusterIP", "LoadBalancer", "NodePort"):
        values = scenarios.with_pools(API_POOL, coordinator={"service": {"type": svc_type}})
        r4, objs, _, e4, notes = helm.template(values, notes=True)
        if c.expect(r4 == 0, f"helm template: {e4}"):
            c.run(f"NOTES with a {svc_type} Service", scenarios.check_notes_port_forward,
                  objs, notes)
    failures += c.failures
    print(f"{'FAIL' if c.failures else 'ok'}: per-pool checksums, replicas and port-forward in NOTES")

    failures += check_docs(helm, chart)

    refused = [(r + ("medbench",))[:4] for r in scenarios.REFUSED]
    refused += [(w, merge({}, v), None, "medbench") for w, v, _ in BAD_VALUES]
    for what, values, fragment, release in refused:
        rc, _, _, err, _ = helm.template(values, release)
        if rc == 0:
            failures.append(f"helm template accepted {what}")
        elif fragment and fragment not in err:
            failures.append(f"{what}: refused, but the message lacks {fragment!r}: {err}")
        else:
            print(f"ok: refused {what}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    return failures


def helm_args(command, chart):
    """`helm install|upgrade RELEASE CHART ARGS...` from the docs as `helm template` args."""
    words = shlex.split(command)
    assert words[:2] in (["helm", "install"], ["helm", "upgrade"]), words
    args = []
    for w in words[4:]:
        args.append(os.path.join(os.path.dirname(os.path.dirname(chart)), w)
                    if w.startswith("helm/medeval/") else w)
    return words[2], args + (["--is-upgrade"] if words[1] == "upgrade" else [])


def check_docs(helm, chart):
    """The commands docs/kubernetes.md shows do what it says."""
    path = os.path.join(render.source_dir(chart), "docs", "kubernetes.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    failures = []
    # The sample schema error: the command shown and its output, as helm prints them.
    m = re.search(r"```\n\$ (helm install .*?)\n(Error: values don't meet.*?)```", text, re.S)
    if not m:
        return [f"{path}: no sample schema error"]
    release, args = helm_args(m.group(1).replace("\\\n", " "), chart)
    rc, _, _, err, _ = helm.template(release=release, args=args)
    # Helm 3.18 and later (and the offline helm) word schema errors as the docs show.
    words_as_shown = helm.offline or helm.version >= (3, 18)
    for line in m.group(2).strip().splitlines():
        if rc == 0 or (words_as_shown and line not in err):
            failures.append(f"{path}: the sample error line {line!r} is not what helm says: {err}")
    # Scaling a pool with --set, as shown.
    m = re.search(r"^\s*(helm upgrade .*--set 'workerPools\[1\]\.replicas=4'.*)$", text, re.M)
    if not m:
        return failures + [f"{path}: no `helm upgrade --set workerPools[1].replicas=4` example"]
    release, args = helm_args(m.group(1), chart)
    rc, objs, _, err, _ = helm.template(release=release, args=args)
    if rc != 0:
        failures.append(f"{path}: {m.group(1)} fails: {err}")
    else:
        replicas = {d["metadata"]["labels"]["medeval.io/pool"]: d["spec"]["replicas"]
                    for d in scenarios.kinds(objs, "Deployment")}
        if replicas.get("gpt4o") != 4 or replicas.get("llama70b") != 2:
            failures.append(f"{path}: {m.group(1)} gives replicas {replicas}")
    print(f"{'FAIL' if failures else 'ok'}: the commands in docs/kubernetes.md")
    return failures


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, chart = sys.argv[1], sys.argv[2]
    if mode == "values":
        failures = check_values(chart)
    elif mode in ("flags", "helm"):
        try:
            failures = check_flags(chart, sys.argv[3]) if mode == "flags" else check_helm(chart)
        except render.Unavailable as e:
            print(f"skipped: {e}")
            return SKIP
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
