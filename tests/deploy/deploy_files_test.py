#!/usr/bin/env python3
"""Checks of the deployment files in deploy/ against the built binary.

  deploy_files_test.py bundle   SOURCE BINARY  deploy/bundle.sh makes a copy that loads
                                               only its own libraries and runs a real job
  deploy_files_test.py runtime  SOURCE BINARY  the runtime packages the Dockerfile installs
                                               (install-deps.sh --runtime) provide every
                                               library the binary loads
  deploy_files_test.py systemd  SOURCE BINARY  the units pass systemd-analyze verify and
                                               use flags the binary has
  deploy_files_test.py compose  SOURCE BINARY  the compose file's commands use real flags

Exit 77 means skipped (a tool this check needs is not installed).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

SKIP = 77


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def help_flags(binary, sub, cache={}):
    if sub not in cache:
        out = run([binary, sub, "--help"])
        if out.returncode != 0:
            raise RuntimeError(f"medeval {sub} --help failed: {out.stderr}")
        cache[sub] = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))
    return cache[sub]


def unknown_flags(binary, argv, where):
    """Flags in a medeval command line (argv after the program) that it does not have."""
    if not argv:
        return [f"{where}: no subcommand"]
    sub = argv[0]
    failures = []
    for arg in argv[1:]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if flag not in help_flags(binary, sub):
                failures.append(f"{where}: `medeval {sub}` has no flag {flag}")
    return failures


def check_bundle(source, binary):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bundle")
        r = run([os.path.join(source, "deploy/bundle.sh"), binary, out])
        if r.returncode != 0:
            return [f"bundle.sh failed: {r.stderr}"]
        print(r.stdout.strip())
        failures = []
        lib = os.path.join(out, "lib")
        loaders = [f for f in os.listdir(lib) if f.startswith("ld-linux")]
        if len(loaders) != 1:
            return [f"expected one loader in the bundle, found {loaders}"]
        # Loaded through its own loader, every library comes from the bundle.
        env = dict(os.environ, LD_DEBUG="libs")
        env.pop("LD_LIBRARY_PATH", None)
        r = run([os.path.join(lib, loaders[0]), "--library-path", lib, os.path.join(lib, "medeval"),
                 "--version"], env=env)
        inits = re.findall(r"calling init: (\S+)", r.stderr)
        outside = [p for p in inits if not p.startswith(lib)]
        if r.returncode != 0 or len(inits) < 10:
            failures.append(f"the bundled binary did not start: {r.stderr[-2000:]}")
        if outside:
            failures.append(f"libraries loaded from outside the bundle: {outside}")
        print(f"ok: {len(inits)} libraries, all from the bundle")
        # The launcher runs a whole job (coordinator, workers, simulated model).
        r = run([os.path.join(out, "bin/medeval"), "--version"])
        want = run([binary, "--version"]).stdout
        if r.stdout != want:
            failures.append(f"launcher --version: {r.stdout!r}, expected {want!r}: {r.stderr}")
        env = dict(os.environ, MEDEVAL_SAMPLES=os.path.join(source, "samples/medbench-mini"))
        r = run([os.path.join(out, "bin/medeval"), "demo", "--out", os.path.join(tmp, "out")],
                env=env, cwd=tmp, timeout=120)
        zip_path = os.path.join(tmp, "out/medeval-sim/MedBench_LLM.zip")
        if r.returncode != 0 or not os.path.exists(zip_path):
            failures.append(f"demo through the bundle failed ({r.returncode}): {r.stderr[-2000:]}")
        else:
            print("ok: demo through the bundle wrote", os.path.relpath(zip_path, tmp))
        return failures


def runtime_packages(source):
    text = open(os.path.join(source, "deploy/install-deps.sh"), encoding="utf-8").read()
    m = re.search(r"^RUNTIME=\((.*?)\)", text, re.S | re.M)
    return m.group(1).split()


def check_runtime(source, binary):
    if not shutil.which("dpkg") or not shutil.which("apt-cache"):
        print("not a Debian system: skipping")
        return None
    wanted = runtime_packages(source)
    r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + wanted)
    closure = {line.strip() for line in r.stdout.splitlines() if not line.startswith(" ")}
    closure |= {p.split(":")[0] for p in closure}
    # Essential packages are in every Debian image.
    r = run(["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\n"])
    base = {l.split()[0] for l in r.stdout.splitlines()
            if " yes " in f" {l} " or l.endswith(" required")}
    failures = []
    libs = re.findall(r"=> (/\S+)", run(["ldd", binary]).stdout)
    # dpkg knows a library by the path its package installed (merged /usr or not).
    candidates = {}
    for lib in libs:
        real = os.path.realpath(lib)
        candidates[lib] = [lib, real, real.replace("/usr/lib/", "/lib/", 1),
                           lib.replace("/lib/", "/usr/lib/", 1)]
    owners = {}
    paths = sorted({c for cs in candidates.values() for c in cs})
    for line in run(["dpkg", "-S"] + paths).stdout.splitlines():
        pkg, _, path = line.partition(": ")
        owners[path.strip()] = pkg.split(":")[0]
    for lib in libs:
        owner = next((owners[c] for c in candidates[lib] if c in owners), None)
        if owner is None:
            failures.append(f"{lib}: no Debian package owns it")
        elif owner not in closure and owner not in base:
            failures.append(f"{lib} comes from {owner}, which install-deps.sh --runtime "
                            f"does not install")
    print(f"ok: checked {len(libs)} libraries against {len(wanted)} runtime packages")
    return failures


def check_systemd(source, binary):
    failures = []
    units = sorted(os.listdir(os.path.join(source, "deploy/systemd")))
    if not units:
        return ["no units in deploy/systemd"]
    have_analyze = shutil.which("systemd-analyze") is not None
    with tempfile.TemporaryDirectory() as tmp:
        for unit in units:
            text = open(os.path.join(source, "deploy/systemd", unit), encoding="utf-8").read()
            m = re.search(r"^ExecStart=(.*?)(?<!\\)$", text, re.S | re.M)
            if not m:
                failures.append(f"{unit}: no ExecStart")
                continue
            argv = shlex.split(m.group(1).replace("\\\n", " "))
            if argv[0] != "/usr/local/bin/medeval":
                failures.append(f"{unit}: runs {argv[0]}")
            failures += unknown_flags(binary, argv[1:], unit)
            if have_analyze:
                # The unit as installed, with the binary where the unit expects it.
                name = unit.replace("@.", "@test.")
                path = os.path.join(tmp, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace("/usr/local/bin/medeval", binary))
                r = run(["systemd-analyze", "verify", path])
                problems = [l for l in (r.stdout + r.stderr).splitlines()
                            if name.split("@")[0] in l or "medeval" in l]
                if r.returncode != 0 or problems:
                    failures.append(f"systemd-analyze verify {unit}: {r.stdout}{r.stderr}")
                else:
                    print(f"ok: systemd-analyze verify {unit}")
        if not have_analyze:
            print("systemd-analyze is not installed: checked the flags only")
    return failures


def check_compose(source, binary):
    path = os.path.join(source, "deploy/compose.yaml")
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    failures = []
    for name, service in doc["services"].items():
        command = service.get("command")
        if not isinstance(command, list):
            failures.append(f"compose service {name}: command must be a list")
            continue
        failures += unknown_flags(binary, [str(c) for c in command], f"compose service {name}")
    print(f"ok: checked {len(doc['services'])} compose services")
    return failures


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    mode, source, binary = sys.argv[1:]
    checks = {"bundle": check_bundle, "runtime": check_runtime, "systemd": check_systemd,
              "compose": check_compose}
    if mode not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    failures = checks[mode](os.path.abspath(source), os.path.abspath(binary))
    if failures is None:
        return SKIP
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
