"""Renders the chart with a real `helm` (or the offline one beside the source tree)
and validates what it renders against the Kubernetes API's schema.

Helm comes from PATH, else from MEDEVAL_SOURCE_DIR/../shared/tools/helm/shim/helm,
which builds itself (with Debian's Go) into a cache folder on first use: the
source tree and ../shared may be read-only, and HOME may be unset or unwritable
in a CI job, so the cache goes to $XDG_CACHE_HOME, ~/.cache or the temp folder,
whichever is writable, and concurrent tests build it once (a lock).
"""
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml


class Unavailable(Exception):
    """Neither helm nor the offline helm can run here: the caller skips."""


def source_dir(chart):
    return os.environ.get("MEDEVAL_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.abspath(chart)))


def _writable_cache():
    candidates = [os.environ.get("XDG_CACHE_HOME")]
    if os.environ.get("HOME"):
        candidates.append(os.path.join(os.environ["HOME"], ".cache"))
    candidates.append(os.path.join(tempfile.gettempdir(), f"medeval-cache-{os.getuid()}"))
    for c in candidates:
        if not c:
            continue
        try:
            os.makedirs(c, exist_ok=True)
        except OSError:
            continue
        if os.access(c, os.W_OK | os.X_OK):
            return c
    raise Unavailable("no writable cache folder for the offline helm")


class Helm:
    def __init__(self, chart):
        self.chart = chart
        self.env = dict(os.environ)
        shared = os.path.join(source_dir(chart), "..", "shared", "tools", "helm")
        self.validator = os.path.join(shared, "kube_validate.py")
        found = shutil.which("helm")
        if found:
            self.helm, self.offline = found, False
        else:
            shim = os.path.join(shared, "shim", "helm")
            if not os.path.isfile(shim):
                raise Unavailable(f"helm is not on PATH and {shim} does not exist")
            if shutil.which("go") is None:
                raise Unavailable("helm is not on PATH and Go (golang-go) is not installed "
                                  "to build the offline helm")
            self.helm, self.offline = shim, True
            self.env["XDG_CACHE_HOME"] = _writable_cache()
            # The first use builds it: once, even when tests run in parallel.
            with open(os.path.join(self.env["XDG_CACHE_HOME"], "helm_render.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                r = self.run(["version"])
            if r.returncode != 0:
                raise RuntimeError(f"building the offline helm failed:\n{r.stderr}")
        version = self.run(["version"]).stdout.strip()
        print(f"helm: {self.helm} ({version})")
        m = re.search(r"v(\d+)\.(\d+)", version)
        self.version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def run(self, args):
        return subprocess.run([self.helm] + args, capture_output=True, text=True, env=self.env)

    def template(self, values=None, release="medbench", args=(), files=(), notes=False):
        """(returncode, objects, stdout, stderr, notes) of `helm template`."""
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["template", release, self.chart, "-n", "medeval"]
            for f in files:
                cmd += ["-f", f]
            if values is not None:
                path = os.path.join(tmp, "values.yaml")
                with open(path, "w", encoding="utf-8") as f:
                    yaml.safe_dump(values, f)
                cmd += ["-f", path]
            cmd += list(args)
            text = ""
            if notes and self.offline:
                r = self.run(cmd + ["--notes"])
                text = r.stderr.split("NOTES:", 1)[-1] if r.returncode == 0 else ""
            elif notes:
                # Real Helm prints NOTES from a client-side dry run of an install.
                inst = ["install"] + cmd[1:] + ["--dry-run=client"]
                if "--is-upgrade" in inst:
                    inst.remove("--is-upgrade")
                n = self.run(inst)
                text = n.stdout.split("NOTES:", 1)[-1] if n.returncode == 0 else ""
                r = self.run(cmd)
            else:
                r = self.run(cmd)
        objects = []
        if r.returncode == 0:
            objects = [o for o in yaml.safe_load_all(r.stdout) if o]
        return r.returncode, objects, r.stdout, r.stderr, text

    def lint(self, files=()):
        cmd = ["lint", self.chart, "--strict"]
        for f in files:
            cmd += ["-f", f]
        return self.run(cmd)

    def validate(self, rendered):
        """Failures of kube_validate.py over {name: rendered text}; one run for all."""
        if not os.path.isfile(self.validator):
            print(f"note: {self.validator} is absent: rendered objects are not validated")
            return []
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, (name, text) in enumerate(rendered.items()):
                path = os.path.join(tmp, f"{i:03d}.yaml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                paths.append((path, name))
            r = subprocess.run([sys.executable, self.validator] + [p for p, _ in paths],
                               capture_output=True, text=True)
        out = r.stdout
        for path, name in paths:
            out = out.replace(path, f"[{name}]")
        print(out.strip().splitlines()[-1] if out.strip() else "kube_validate: no output")
        if r.returncode == 0:
            return []
        bad = [line for line in out.splitlines() if "INVALID" in line or line.startswith("    ")
               or "YAML:" in line]
        return ["kube_validate: " + "\n".join(bad or [out + r.stderr])]
