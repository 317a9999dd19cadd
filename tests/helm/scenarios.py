"""What the chart must render (and refuse), checked on `helm template` output.

Each scenario renders the chart with some values and checks the objects: the
names Kubernetes accepts, the settings that reach the pods, and the values that
must stop `helm install` with a clear message.
"""
import copy
import glob
import os
import re

import yaml

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

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def with_pools(*pools, **top):
    values = {"workerPools": [copy.deepcopy(p) for p in pools]}
    values.update(copy.deepcopy(top))
    return values


def kinds(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind, **labels):
    found = [o for o in kinds(objs, kind)
             if all(o["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} with {labels}, found {len(found)}")
    return found[0]


def pool_deployment(objs, pool):
    return one(objs, "Deployment", **{"medeval.io/pool": pool})


def pod(obj):
    return obj["spec"]["template"]["spec"]


def container(obj):
    return pod(obj)["containers"][0]


def job(objs):
    return one(objs, "Job")


class Checks:
    """Collects failures: every check runs even when an earlier one failed."""

    def __init__(self):
        self.failures = []

    def expect(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond

    def run(self, name, fn, *args):
        try:
            fn(self, *args)
        except (AssertionError, KeyError, IndexError, TypeError) as e:
            self.failures.append(f"{name}: {type(e).__name__}: {e}")


def check_objects(c, where, objs):
    """What every rendering must satisfy, whatever the values."""
    seen = set()
    for o in objs:
        kind, name = o["kind"], o["metadata"]["name"]
        if not c.expect(isinstance(name, str), f"{where}: a {kind} named {name!r}, no string"):
            continue
        c.expect((kind, name) not in seen, f"{where}: two {kind} objects named {name}")
        seen.add((kind, name))
        c.expect(len(name) <= 253 and DNS1123_SUBDOMAIN.match(name),
                 f"{where}: {kind} name {name!r} is not a DNS subdomain")
        if kind == "Service":
            c.expect(len(name) <= 63 and DNS1035.match(name),
                     f"{where}: Service name {name!r} ({len(name)}) is not a DNS-1035 label")
        if kind in ("Deployment", "Job"):
            c.expect(len(name) <= 63, f"{where}: {kind} name {name!r} is {len(name)} > 63")
        if kind == "StatefulSet":
            # Its pods get controller-revision-hash=<name>-<10 chars>, a label value (<= 63).
            c.expect(len(name) <= 52, f"{where}: StatefulSet name {name!r} is {len(name)} > 52")
        labels = dict(o["metadata"].get("labels", {}))
        if kind in WORKLOADS:
            labels.update(o["spec"]["template"]["metadata"].get("labels", {}))
        for k, v in labels.items():
            c.expect(isinstance(v, str) and len(v) <= 63 and LABEL_VALUE.match(v),
                     f"{where}: {kind} {name}: label {k}={v!r} is no label value")
        if kind in WORKLOADS:
            spec = pod(o)
            volumes = {v["name"] for v in spec.get("volumes", [])}
            volumes |= {t["metadata"]["name"] for t in o["spec"].get("volumeClaimTemplates", [])}
            names = [v["name"] for v in spec.get("volumes", [])]
            c.expect(len(set(names)) == len(names),
                     f"{where}: {kind} {name}: two volumes of the same name: {sorted(names)}")
            for ct in spec["containers"]:
                mounts = ct.get("volumeMounts", [])
                paths = [m["mountPath"] for m in mounts]
                c.expect(len(set(paths)) == len(paths),
                         f"{where}: {kind} {name}: two mounts at the same path: {sorted(paths)}")
                for m in mounts:
                    c.expect(m["name"] in volumes,
                             f"{where}: {kind} {name}: mount of a missing volume {m['name']}")
                # Every file a flag names is on a mounted volume.
                for a in ct.get("args", []):
                    if not c.expect(isinstance(a, str),
                                    f"{where}: {kind} {name}: an argument YAML read as {a!r}"):
                        continue
                    m = re.match(r"--[a-z-]+=(/etc/medeval/.*)", a)
                    if m:
                        c.expect(any(m.group(1).startswith(x["mountPath"] + "/") for x in mounts),
                                 f"{where}: {kind} {name}: {a} is on no mounted volume")
            selector = o["spec"]["selector"]["matchLabels"] if kind != "Job" else {}
            tmpl = o["spec"]["template"]["metadata"]["labels"]
            c.expect(all(tmpl.get(k) == v for k, v in selector.items()),
                     f"{where}: {kind} {name}: pod labels do not match the selector")
    sts = kinds(objs, "StatefulSet")
    if sts:
        # The governing Service of a StatefulSet is headless.
        svc = [s for s in kinds(objs, "Service")
               if s["metadata"]["name"] == sts[0]["spec"]["serviceName"]]
        c.expect(svc and svc[0]["spec"].get("clusterIP") == "None",
                 f"{where}: the StatefulSet's serviceName is not a headless Service")


def check_long_release(c, objs):
    names = [d["metadata"]["name"] for d in kinds(objs, "Deployment")]
    c.expect(len(names) == 2 and len(set(names)) == 2,
             f"two pools with a long common prefix share a Deployment name: {names}")
    pdbs = [d["metadata"]["name"] for d in kinds(objs, "PodDisruptionBudget")]
    c.expect(len(set(pdbs)) == len(pdbs), f"PodDisruptionBudget names collide: {pdbs}")


def check_gpu_and_api(c, objs):
    gpu = pool_deployment(objs, "qwen")
    res = container(gpu)["resources"]
    c.expect(res.get("limits", {}).get("nvidia.com/gpu") == 4, f"GPU limit: {res}")
    c.expect({"cpu", "memory"} <= set(res.get("requests", {})),
             f"a serve pool without serve.resources has no CPU/memory requests: {res}")
    c.expect(gpu["spec"].get("strategy", {}).get("type") != "Recreate",
             "a GPU pool is replaced all at once (Recreate)")
    c.expect(gpu["spec"]["strategy"].get("rollingUpdate", {}).get("maxSurge") == 0,
             "a GPU pool's rollout may start a pod before one stops (its GPUs are not there twice)")
    # The worker gives the model server 30 minutes by default: the rollout and the
    # startup probe must not give up earlier.
    c.expect(gpu["spec"].get("progressDeadlineSeconds", 600) > 1800,
             f"progressDeadlineSeconds {gpu['spec'].get('progressDeadlineSeconds')} < the load time")
    probe = container(gpu).get("startupProbe")
    c.expect(probe and probe["periodSeconds"] * probe["failureThreshold"] >= 1800,
             f"no startupProbe sized for weight loading: {probe}")
    api = pool_deployment(objs, "gpt4o")
    c.expect("nvidia.com/gpu" not in container(api)["resources"].get("limits", {}),
             "an API pool asks for GPUs")


def check_pool_resources(c, objs):
    res = container(pool_deployment(objs, "qwen"))["resources"]
    c.expect(res.get("requests", {}).get("cpu") == "6" and res["limits"].get("nvidia.com/gpu") == 4,
             f"a serve pool's own resources are ignored: {res}")


def check_slow_model(c, objs):
    gpu = pool_deployment(objs, "qwen")
    probe = container(gpu)["startupProbe"]
    c.expect(probe["periodSeconds"] * probe["failureThreshold"] >= 3600,
             f"startupProbe {probe} shorter than startupTimeout 3600")
    c.expect(gpu["spec"].get("progressDeadlineSeconds", 600) > 3600,
             "progressDeadlineSeconds shorter than startupTimeout 3600")


def checksums(objs):
    return {d["metadata"]["labels"]["medeval.io/pool"]:
            d["spec"]["template"]["metadata"].get("annotations", {}) for d in kinds(objs, "Deployment")}


def check_checksums(c, before, after):
    b, a = checksums(before), checksums(after)
    c.expect(b["qwen"] == a["qwen"],
             "changing one API pool's rpm restarts the GPU pool (its pod annotations changed)")
    c.expect(b["gpt4o"] != a["gpt4o"], "changing an API pool's rpm does not restart it")


def check_stop_grace_zero(c, objs):
    cm = one(objs, "ConfigMap")["data"]["models.yaml"]
    c.expect("stop_grace: 0" in cm, f"stopGrace 0 is not in the models file:\n{cm}")
    c.expect(pod(pool_deployment(objs, "qwen"))["terminationGracePeriodSeconds"] == 60 + 15,
             "stopGrace 0 is read as 30 in the termination grace")


def check_replicas_zero(c, objs, notes):
    c.expect(pool_deployment(objs, "gpt4o")["spec"]["replicas"] == 0, "replicas 0 not honoured")
    c.expect(pool_deployment(objs, "qwen")["spec"]["replicas"] == 3, "workerDefaults.replicas")
    c.expect("gpt4o: model gpt-4o, 0 replica(s)" in notes,
             f"NOTES does not print the pool's 0 replicas:\n{notes}")
    c.expect("qwen: model Qwen2.5-72B-Instruct, 3 replica(s)" in notes,
             f"NOTES does not print the default 3 replicas:\n{notes}")


def check_notes_port_forward(c, objs, notes):
    m = re.search(r"port-forward svc/(\S+) (\d+) (\d+)", notes)
    if not c.expect(m, f"no port-forward in NOTES:\n{notes}"):
        return
    svc = [s for s in kinds(objs, "Service") if s["metadata"]["name"] == m.group(1)]
    ports = {p["port"] for p in svc[0]["spec"]["ports"]} if svc else set()
    c.expect({int(m.group(2)), int(m.group(3))} <= ports,
             f"NOTES port-forwards {m.group(0)}, but that Service has ports {ports}")


def check_own_keys(c, objs):
    """Keys the chart sets win over the same keys in podAnnotations or labels values."""
    ann = pool_deployment(objs, "gpt4o")["spec"]["template"]["metadata"]["annotations"]
    c.expect(re.fullmatch(r"[0-9a-f]{64}", ann.get("checksum/models", "")) and ann.get("a") == "b",
             f"pod annotations: {ann}")
    labels = one(objs, "ServiceMonitor")["metadata"]["labels"]
    c.expect(labels.get("app.kubernetes.io/instance") == "medbench" and labels.get("release") == "p",
             f"ServiceMonitor labels: {labels}")


def check_security(c, objs):
    coord = container(one(objs, "StatefulSet"))["args"]
    for flag in ("--token-file=", "--tls-cert=", "--tls-key=", "--client-ca="):
        c.expect(any(a.startswith(flag) for a in coord), f"coordinator lacks {flag}: {coord}")
    for obj in [pool_deployment(objs, "gpt4o"), pool_deployment(objs, "qwen"), job(objs)]:
        args = container(obj)["args"]
        for flag in ("--token-file=", "--tls-ca=", "--tls-cert=", "--tls-key=",
                     "--tls-server-name="):
            c.expect(any(a.startswith(flag) for a in args),
                     f"{obj['metadata']['name']} lacks {flag}: {args}")


def check_exposed(c, objs):
    lb = [s for s in kinds(objs, "Service") if s["spec"].get("type") == "LoadBalancer"]
    c.expect(lb, "no LoadBalancer Service")
    for s in lb:
        # /metrics and the probes have no token or TLS: never on the load balancer.
        c.expect([p["name"] for p in s["spec"]["ports"]] == ["grpc"],
                 f"the LoadBalancer Service exposes more than gRPC: {s['spec']['ports']}")
    c.expect(one(objs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics",
             "ServiceMonitor")
    rules = one(objs, "NetworkPolicy")["spec"]["ingress"]
    c.expect(any(any("ipBlock" in f for f in r.get("from", [])) and
                 any(p["port"] == "grpc" for p in r["ports"]) for r in rules),
             f"a LoadBalancer Service comes with no NetworkPolicy rule that admits it: {rules}")
    scraped = [s for s in kinds(objs, "Service")
               if s["metadata"]["labels"].get("medeval.io/metrics") == "true"]
    c.expect(sorted(s["metadata"]["labels"]["app.kubernetes.io/component"] for s in scraped) ==
             ["coordinator", "worker"],
             f"Services scraped by the ServiceMonitor: {[s['metadata']['name'] for s in scraped]}")
    for s in scraped:
        c.expect(any(p["name"] == "metrics" for p in s["spec"]["ports"]),
                 f"scraped Service {s['metadata']['name']} has no metrics port")


def check_clusterip_metrics(c, objs):
    """The default ClusterIP Service keeps both ports (NOTES port-forwards both)."""
    svc = one(objs, "Service", **{"app.kubernetes.io/component": "coordinator",
                                  "medeval.io/metrics": "true"})
    c.expect(svc["spec"].get("clusterIP") == "None",
             f"the coordinator is scraped through {svc['metadata']['name']}, not the headless Service")
    client = [s for s in kinds(objs, "Service") if s["spec"].get("clusterIP") != "None"]
    c.expect(len(client) == 1 and {p["name"] for p in client[0]["spec"]["ports"]} ==
             {"grpc", "metrics"}, f"client Service ports: {client}")


def models_file(objs):
    return [m["name"] for m in yaml.safe_load(one(objs, "ConfigMap")["data"]["models.yaml"])["models"]]


def arg_values(obj, flag):
    return [a.split("=", 1)[1] for a in container(obj)["args"]
            if isinstance(a, str) and a.startswith(flag + "=")]


def check_odd_text(c, objs):
    """Text YAML would read as a comment or a mapping reaches the command lines as given."""
    models = models_file(objs)
    c.expect(sorted(models) == sorted(ODD_MODELS), f"models file: {models}")
    for d in kinds(objs, "Deployment"):
        c.expect(arg_values(d, "--model") in ([m] for m in models),
                 f"{d['metadata']['name']}: --model {arg_values(d, '--model')} is not in {models}")
    j = job(objs)
    c.expect(sorted(arg_values(j, "--model")) == sorted(ODD_MODELS),
             f"submit --model {arg_values(j, '--model')}")
    c.expect(arg_values(j, "--data") == [ODD_DATA], f"submit --data {arg_values(j, '--data')}")


def check_submit(c, objs, hook, fresh):
    j = job(objs)
    args = container(j)["args"]
    c.expect(any(re.match(r"--wait-for-coordinator=\d", a) for a in args),
             f"the submit Job does not wait for the coordinator: {args}")
    annotations = j["metadata"].get("annotations", {})
    c.expect(annotations.get("helm.sh/hook") == hook,
             f"submit Job hook {annotations.get('helm.sh/hook')!r}, want {hook!r}")
    c.expect(("--fresh" in args) == fresh, f"--fresh {'missing' if fresh else 'given'}: {args}")


def check_submit_no_wait(c, objs):
    # medeval submit refuses a wait of 0 (not a positive duration): 0s means no flag.
    args = container(job(objs))["args"]
    c.expect(not any(a.startswith("--wait-for-coordinator") for a in args),
             f"waitForCoordinator 0s still passes the flag: {args}")


def check_name_override(c, objs):
    for o in objs:
        c.expect("-evalx" in o["metadata"]["name"], f"nameOverride not in {o['metadata']['name']}")
        c.expect(o["metadata"]["labels"]["app.kubernetes.io/name"] == "evalx",
                 f"nameOverride not in the labels of {o['kind']} {o['metadata']['name']}")


def check_production(c, objs):
    coord = one(objs, "StatefulSet")
    gpu, api, sub = pool_deployment(objs, "qwen"), pool_deployment(objs, "gpt4o"), job(objs)
    c.expect(len(kinds(objs, "PodDisruptionBudget")) == 3, "PodDisruptionBudgets: coordinator + 2")
    sa = one(objs, "ServiceAccount")
    c.expect(sa.get("automountServiceAccountToken") is False, "the token is mounted")
    for o in (coord, gpu, api, sub):
        spec, name = pod(o), o["metadata"]["name"]
        c.expect(spec.get("serviceAccountName") == sa["metadata"]["name"], f"{name}: account")
        c.expect(spec.get("automountServiceAccountToken") is False, f"{name}: token mounted")
        c.expect(spec.get("priorityClassName") == "medeval", f"{name}: priorityClassName")
        c.expect(o["spec"]["template"]["metadata"]["labels"].get("team") == "eval",
                 f"{name}: podLabels")
        c.expect({"name": "regcred"} in spec.get("imagePullSecrets", []), f"{name}: pull secret")
        ct = container(o)
        c.expect(any(e["name"] == "EXTRA" for e in ct.get("env", [])), f"{name}: extraEnv")
        c.expect(ct.get("envFrom") == [{"configMapRef": {"name": "proxy"}}], f"{name}: envFrom")
        c.expect(any(v["name"] == "extra" for v in spec["volumes"]), f"{name}: extraVolumes")
        c.expect(any(m["name"] == "extra" for m in ct["volumeMounts"]), f"{name}: mounts")
        spread = spec.get("topologySpreadConstraints", [])
        c.expect(spread and spread[0].get("labelSelector", {}).get("matchLabels") ==
                 (o["spec"]["selector"]["matchLabels"] if o["kind"] != "Job"
                  else {k: v for k, v in o["spec"]["template"]["metadata"]["labels"].items()
                        if k.startswith("app.kubernetes.io/")}),
                 f"{name}: topologySpreadConstraints without the pods' labelSelector: {spread}")
    c.expect(pod(gpu).get("runtimeClassName") == "nvidia", "runtimeClassName of the GPU pool")
    c.expect({"name": "vllm-registry"} in pod(gpu)["imagePullSecrets"], "pool pull secret")
    c.expect(pod(api).get("nodeSelector") == {"pool": "cpu"}, "per-pool nodeSelector")
    c.expect(pod(api).get("tolerations") == [{"key": "cpu", "operator": "Exists"}], "tolerations")
    c.expect("nodeAffinity" in pod(api).get("affinity", {}), "per-pool affinity")
    c.expect(pod(sub).get("nodeSelector") == {"pool": "batch"}, "submit Job nodeSelector")
    c.expect(container(sub)["resources"]["requests"]["cpu"] == "250m", "submit Job resources")
    c.expect(pod(sub).get("tolerations"), "submit Job tolerations")


PRODUCTION = {
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount": {"annotations": {"iam.example.com/role": "medeval"}},
    "coordinator": {
        "podDisruptionBudget": {"enabled": True},
        "priorityClassName": "medeval",
        "podLabels": {"team": "eval"},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "ScheduleAnyway"}],
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "envFrom": [{"configMapRef": {"name": "proxy"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "extraArgs": ["--startup-grace=10"],
    },
    "workerDefaults": {
        "priorityClassName": "medeval",
        "podLabels": {"team": "eval"},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "DoNotSchedule"}],
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "envFrom": [{"configMapRef": {"name": "proxy"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
    },
    "workerPools": [
        dict(SERVE_POOL, replicas=2, imagePullSecrets=[{"name": "vllm-registry"}],
             serve=dict(SERVE_POOL["serve"], runtimeClassName="nvidia")),
        dict(API_POOL, nodeSelector={"pool": "cpu"},
             tolerations=[{"key": "cpu", "operator": "Exists"}],
             affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                 {"weight": 1, "preference": {"matchExpressions": [
                     {"key": "spot", "operator": "DoesNotExist"}]}}]}},
             podDisruptionBudget={"minAvailable": "50%"}, extraArgs=["--retry-base-ms=200"]),
    ],
    "submit": {
        "enabled": True, "priorityClassName": "medeval", "podLabels": {"team": "eval"},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "ScheduleAnyway"}],
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "envFrom": [{"configMapRef": {"name": "proxy"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
    },
}

SECURE = {
    "security": {"token": {"existingSecret": "medeval-token"},
                 "tls": {"existingSecret": "medeval-tls", "mutual": True,
                         "clientSecret": "medeval-client-tls",
                         "serverName": "coordinator.example.com"}},
    "submit": {"enabled": True},
}
EXPOSED = {
    "networkPolicy": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "coordinator": {"service": {"type": "LoadBalancer",
                                "loadBalancerSourceRanges": ["203.0.113.0/24"]}},
}
LONG_RELEASE = "r" * 53
ODD_MODELS = ["org/Model v2 #1", "a: b", "true"]
ODD_DATA = "/data/MedBench #4: LLM"
ODD = {
    "workerPools": [dict(API_POOL, name=f"p{i}", model=m) for i, m in enumerate(ODD_MODELS)],
    "submit": {"enabled": True, "dataPath": ODD_DATA, "models": ODD_MODELS},
}
LONG_POOLS = [dict(API_POOL, name="a" * 36 + "-one", model="m1"),
              dict(API_POOL, name="a" * 36 + "-two", model="m2")]


def renderings(chart):
    """(name, values, release, extra args, checks) of every scenario rendered."""
    out = [("defaults", None, "medbench", [], None)]
    for path in sorted(glob.glob(os.path.join(chart, "examples", "*.yaml"))):
        out.append((os.path.relpath(path, chart), None, "medbench", ["-f", path], None))
    gpu_api = with_pools(SERVE_POOL, API_POOL, submit={"enabled": True})
    out += [
        ("release name of 1 character", gpu_api, "m", [], check_gpu_and_api),
        ("release name of 53 characters", with_pools(*LONG_POOLS, submit={"enabled": True}),
         LONG_RELEASE, [], check_long_release),
        # 32: the StatefulSet's name is 52 characters as it is; 33: it is shortened.
        ("release name of 32 characters", gpu_api, "r" * 32, [], check_gpu_and_api),
        ("release name of 33 characters", gpu_api, "r" * 33, [], check_gpu_and_api),
        ("release name of 52 characters", with_pools(*LONG_POOLS, submit={"enabled": True}),
         "r" * 52, [], check_long_release),
        ("ClusterIP coordinator Service", with_pools(API_POOL), "medbench", [],
         check_clusterip_metrics),
        ("text YAML would misread", ODD, "medbench", [], check_odd_text),
        ("annotations and labels with the chart's own keys",
         dict(with_pools(dict(API_POOL, podAnnotations={"checksum/models": "mine", "a": "b"})),
              serviceMonitor={"enabled": True,
                              "labels": {"app.kubernetes.io/instance": "other", "release": "p"}}),
         "medbench", ["-a", "monitoring.coreos.com/v1"], check_own_keys),
        # Names YAML reads as numbers: every label and name must stay a string.
        ("names YAML reads as numbers",
         dict(with_pools(dict(API_POOL, name="70"), dict(SERVE_POOL, name="0x1f"),
                         submit={"enabled": True}),
              serviceMonitor={"enabled": True}, nameOverride="123",
              coordinator={"podDisruptionBudget": {"enabled": True}}),
         "r1", ["-a", "monitoring.coreos.com/v1"], None),
        ("a GPU pool with an API pool", gpu_api, "medbench", [], check_gpu_and_api),
        ("a serve pool's own resources",
         with_pools(dict(SERVE_POOL, resources={"requests": {"cpu": "6", "memory": "40Gi"}})),
         "medbench", [], check_pool_resources),
        ("a model that loads for an hour",
         with_pools(dict(SERVE_POOL, serve=dict(SERVE_POOL["serve"], startupTimeout=3600))),
         "medbench", [], check_slow_model),
        ("stopGrace 0", with_pools(dict(SERVE_POOL, drainGrace=60,
                                        serve=dict(SERVE_POOL["serve"], stopGrace=0))),
         "medbench", [], check_stop_grace_zero),
        ("TLS + token + mutual TLS", dict(with_pools(SERVE_POOL, API_POOL), **SECURE),
         "medbench", [], check_security),
        ("NetworkPolicy, ServiceMonitor, LoadBalancer", dict(with_pools(API_POOL), **EXPOSED),
         "medbench", ["-a", "monitoring.coreos.com/v1"], check_exposed),
        ("nameOverride", dict(with_pools(API_POOL, submit={"enabled": True}),
                              nameOverride="evalx"), "medbench", [], check_name_override),
        ("production settings", PRODUCTION, "medbench", [], check_production),
    ]
    out.append(("submit Job that does not wait",
                with_pools(API_POOL, submit={"enabled": True, "waitForCoordinator": "0s"}),
                "medbench", [], check_submit_no_wait))
    for what, upgrade, on_upgrade, fresh, hook, want_fresh in [
            ("install", False, "none", False, "post-install", False),
            ("install, fresh", False, "none", True, "post-install", True),
            ("upgrade, fresh on install only", True, "none", True, "post-install", False),
            ("upgrade, resume", True, "resume", True, "post-install,post-upgrade", False),
            ("upgrade, fresh", True, "fresh", False, "post-install,post-upgrade", True)]:
        submit = {"enabled": True, "fresh": fresh}
        if on_upgrade != "none":
            submit["onUpgrade"] = on_upgrade
        values = with_pools(API_POOL, submit=submit)
        out.append((f"submit Job: {what}", values, "medbench",
                    ["--is-upgrade"] if upgrade else [],
                    lambda c, objs, h=hook, f=want_fresh: check_submit(c, objs, h, f)))
    return out


# Values `helm template` must refuse, with a fragment of the message (and the release
# name when it matters).
REFUSED = [
    ("two pools of the same name",
     with_pools(API_POOL, dict(API_POOL, model="other")), "pool names must be unique"),
    ("two pools of the same model",
     with_pools(API_POOL, dict(API_POOL, name="other")), "give each model one pool"),
    ("submit.models naming no pool",
     with_pools(API_POOL, submit={"enabled": True, "models": ["gpt-5"]}),
     "submit.models[0]: \"gpt-5\" is not the model of any pool"),
    ("submit enabled without pools", {"submit": {"enabled": True}}, "no workerPools"),
    ("the gRPC port equal to the metrics port",
     {"coordinator": {"port": 9464, "metricsPort": 9464}}, "ports must differ"),
    ("a storage size given as a number", {"coordinator": {"persistence": {"size": 20}}},
     "persistence"),
    ("a storage size without a unit", {"coordinator": {"persistence": {"size": "20"}}},
     "persistence"),
    ("a PodDisruptionBudget with minAvailable and maxUnavailable",
     {"workerDefaults": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}},
     "workerDefaults.podDisruptionBudget: give minAvailable or maxUnavailable, not both"),
    ("a pool's PodDisruptionBudget with minAvailable and maxUnavailable",
     with_pools(dict(API_POOL, podDisruptionBudget={"minAvailable": 1, "maxUnavailable": "10%"})),
     "workerPools[0].podDisruptionBudget: give minAvailable or maxUnavailable, not both"),
    ("a wait that is no duration", {"submit": {"waitForCoordinator": "soon"}},
     "waitForCoordinator"),
    ("an unknown onUpgrade", {"submit": {"onUpgrade": "always"}}, "onUpgrade"),
    ("a pool named coordinator (its PodDisruptionBudget would be the coordinator's)",
     with_pools(dict(API_POOL, name="coordinator")),
     "workerPools[0].name: \"coordinator\" is reserved"),
    ("a coordinator volume named like one of the chart's",
     {"coordinator": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}},
     "coordinator.extraVolumes[0].name: \"tmp\" is a volume of the chart"),
    ("a pool volume named like one of the chart's",
     with_pools(dict(SERVE_POOL, extraVolumes=[{"name": "dshm", "emptyDir": {}}])),
     "workerPools[0].extraVolumes[0].name: \"dshm\" is a volume of the chart"),
    ("a default worker volume named like one of the chart's",
     with_pools(API_POOL, workerDefaults={"extraVolumes": [{"name": "models", "emptyDir": {}}]}),
     "workerDefaults.extraVolumes[0].name: \"models\" is a volume of the chart"),
    ("a submit volume named like one of the chart's",
     with_pools(API_POOL, submit={"enabled": True,
                                  "extraVolumes": [{"name": "data", "emptyDir": {}}]}),
     "submit.extraVolumes[0].name: \"data\" is a volume of the chart"),
    ("a mount over one of the chart's",
     with_pools(API_POOL, workerDefaults={"extraVolumes": [{"name": "x", "emptyDir": {}}],
                                          "extraVolumeMounts": [{"name": "x", "mountPath": "/tmp"}]}),
     "workerDefaults.extraVolumeMounts[0].mountPath: \"/tmp\" is a mount of the chart"),
    # A Service's name must start with a letter (DNS-1035), and every name starts
    # with the release's (Helm accepts release names that start with a digit).
    ("a release name that starts with a digit", with_pools(API_POOL),
     "names start with \"1234-medeval\"", "1234"),
    ("a nameOverride that makes the full name start with a digit",
     {"nameOverride": "12"}, "names start with \"123\"", "123"),
    ("an env entry with a misspelt key",
     {"coordinator": {"extraEnv": [{"name": "A", "vaule": "1"}]}}, "extraEnv"),
]


def flags_of(objs):
    """(object, subcommand, flag) of every medeval command line rendered."""
    out = []
    for o in objs:
        if o["kind"] not in WORKLOADS:
            continue
        for ct in pod(o)["containers"]:
            if ct.get("command") != ["medeval"]:
                continue
            args = ct["args"]
            for a in args[1:]:
                if isinstance(a, str) and a.startswith("--"):
                    out.append((f"{o['kind']} {o['metadata']['name']}", args[0], a.split("=")[0]))
    return out
