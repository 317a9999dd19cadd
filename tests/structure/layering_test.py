#!/usr/bin/env python3
"""The libraries' link lines against what their sources include.

For every library and executable the CMake files define (add_library NAME
STATIC files..., add_executable NAME files...),
the project and third-party headers its files (and their headers) include
must be reachable through its link line, and every project or third-party
library its link line names must be included by one of its files: a link
line lists what the library uses and only that. The folders' layering holds
too: proto <- common <- sim, worker, coordinator, audit, client <- local <- cli.

Usage: layering_test.py SOURCE_DIR
"""
import os
import re
import sys

# Folder -> the folders its files may include (besides its own).
LAYERS = {
    "proto": set(),
    "common": {"proto"},
    "sim": {"common", "proto"},
    "worker": {"common", "proto"},
    "coordinator": {"common", "proto"},
    "audit": {"common", "proto"},
    "client": {"common", "proto"},
    "local": {"client", "coordinator", "worker", "common", "proto"},
    "cli": {"local", "client", "coordinator", "worker", "sim", "audit", "common", "proto"},
}

# A third-party include prefix -> the link targets that provide it.
THIRD_PARTY = [
    ("grpcpp/", {"PkgConfig::GRPCPP"}),
    ("grpc/", {"PkgConfig::GRPCPP"}),
    ("google/protobuf/", {"protobuf::libprotobuf"}),
    ("poppler/", {"PkgConfig::POPPLER_CPP"}),
    ("poppler-", {"PkgConfig::POPPLER_CPP"}),
    ("zip.h", {"PkgConfig::LIBZIP"}),
    ("prometheus/", {"prometheus-cpp::core", "prometheus-cpp::pull"}),
    ("yaml-cpp/", {"yaml-cpp"}),
    ("nlohmann/", {"nlohmann_json::nlohmann_json"}),
    ("curl/", {"CURL::libcurl"}),
    ("openssl/", {"OpenSSL::Crypto", "OpenSSL::SSL"}),
    ("zlib.h", {"ZLIB::ZLIB"}),
    ("boost/", {"Boost::headers"}),
    ("CLI/", {"CLI11::CLI11"}),
]
# Always there through medeval_base, or header-only parts of the toolchain.
IGNORED_TARGETS = re.compile(r"^(absl::|Threads::)")

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def strip_comments(text):
    return re.sub(r"#[^\n]*", "", text)


def parse_cmake(root):
    """name -> {dir, sources, links} for every static library and executable."""
    libs = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("build", "tests")]
        if "CMakeLists.txt" not in filenames:
            continue
        rel = os.path.relpath(dirpath, root)
        text = strip_comments(open(os.path.join(dirpath, "CMakeLists.txt")).read())
        for m in re.finditer(r"add_(?:library|executable)\(\s*(\S+)\s+(?:STATIC\s+)?([^)]*)\)",
                             text):
            name, files = m.group(1), m.group(2).split()
            libs[name] = {"dir": rel, "sources": [f for f in files if f.endswith(".cc")],
                          "links": set()}
        for m in re.finditer(r"target_link_libraries\(\s*(\S+)\s+([^)]*)\)", text):
            name = m.group(1)
            if name not in libs:
                continue
            for word in m.group(2).split():
                if word not in ("PUBLIC", "PRIVATE", "INTERFACE"):
                    libs[name]["links"].add(word)
    return libs


def includes_of(path):
    try:
        return INCLUDE.findall(open(path, encoding="utf-8").read())
    except OSError:
        return []


def main():
    root = sys.argv[1]
    libs = parse_cmake(root)
    errors = []
    if "medeval_client" not in libs or "medeval_local" not in libs:
        errors.append("the libraries medeval_client and medeval_local are not both defined")

    # Which library owns a project header: the one compiling its .cc. The
    # generated proto headers belong to the proto libraries.
    owner = {"proto/medeval.pb.h": "medeval_proto",
             "proto/medeval.grpc.pb.h": "medeval_grpc_proto"}
    for name, lib in libs.items():
        for src in lib["sources"]:
            if src.startswith("$"):
                continue
            base = os.path.normpath(os.path.join(lib["dir"], src))[: -len(".cc")]
            owner[base + ".h"] = name
            owner[base + ".cc"] = name

    def closure(name, seen=None):
        seen = set() if seen is None else seen
        for dep in libs.get(name, {}).get("links", ()):
            if dep not in seen:
                seen.add(dep)
                closure(dep, seen)
        return seen

    checked = 0
    for name, lib in sorted(libs.items()):
        if lib["dir"] in ("proto", "bench") or lib["dir"].startswith("tests"):
            continue
        folder = lib["dir"].split(os.sep)[0]
        files = []
        for src in lib["sources"]:
            base = os.path.join(lib["dir"], src)[: -len(".cc")]
            files += [base + ".cc", base + ".h"]
        used_libs, used_targets = {}, {}
        pending = list(files)
        seen_files = set()
        while pending:
            f = pending.pop()
            if f in seen_files:
                continue
            seen_files.add(f)
            for inc in includes_of(os.path.join(root, f)):
                top = inc.split("/")[0]
                if top in LAYERS:
                    if top != folder and top not in LAYERS.get(folder, set()):
                        errors.append(f"{f}: includes {inc}, but {folder}/ may use only "
                                      f"{', '.join(sorted(LAYERS[folder])) or 'nothing'}")
                    o = owner.get(inc)
                    if o is None:
                        # A header-only header: what it includes counts for us.
                        if os.path.exists(os.path.join(root, inc)):
                            pending.append(inc)
                    elif o != name:
                        used_libs.setdefault(o, f)
                    continue
                for prefix, targets in THIRD_PARTY:
                    if inc.startswith(prefix):
                        used_targets.setdefault(frozenset(targets), f)
        reach = closure(name)
        for dep, where in sorted(used_libs.items()):
            if dep not in reach:
                errors.append(f"{name}: {where} uses {dep}, which its link line does not reach")
        for targets, where in used_targets.items():
            if not (targets & reach) and not any(
                    targets & libs[d]["links"] for d in reach if d in libs):
                errors.append(f"{name}: {where} includes {'/'.join(sorted(targets))}, "
                              f"which its link line does not reach")
        used_third = set().union(*used_targets.keys()) if used_targets else set()
        for dep in sorted(lib["links"]):
            if IGNORED_TARGETS.match(dep):
                continue
            if dep in libs:
                if dep not in used_libs:
                    errors.append(f"{name}: links {dep}, but none of its files includes it")
            elif dep not in used_third:
                errors.append(f"{name}: links {dep}, but none of its files includes it")
        checked += 1

    if errors:
        for e in errors:
            print("layering: " + e)
        return 1
    print(f"layering: {checked} libraries and executables, each links what it uses and only that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
