#!/usr/bin/env bash
# Makes a self-contained copy of a medeval binary: the binary, every shared
# library it loads and the dynamic loader, with a launcher that runs the
# binary through that loader. The copy runs on any x86-64/arm64 Linux,
# whatever its C library, so medeval can be added to an image of another
# distribution (a model server's image, say) without that distribution's
# packages.
#
#   deploy/bundle.sh build/medeval /opt/medeval-bundle
#   /opt/medeval-bundle/bin/medeval --version
#
# Processes that medeval starts (a model server under `worker --serve`) run
# with the host image's own libraries: the loader path is an argument, not
# LD_LIBRARY_PATH, so nothing leaks into their environment.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY OUTDIR" >&2
  exit 2
fi
binary=$1
out=$2
if [ ! -x "$binary" ]; then
  echo "$0: $binary: not an executable file" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cp "$binary" "$out/lib/medeval"

loader=""
# Lines: "libfoo.so.1 => /path/libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
while read -r first arrow path _; do
  if [ "$arrow" = "=>" ]; then
    if [ "$path" = "not" ]; then
      echo "$0: $binary needs $first, which is not installed" >&2
      exit 1
    fi
    [ -f "$path" ] && cp -L "$path" "$out/lib/$first"
  elif [ -f "$first" ]; then
    loader=$(basename "$first")
    cp -L "$first" "$out/lib/$loader"
  fi
done < <(ldd "$binary")
if [ -z "$loader" ]; then
  echo "$0: no dynamic loader found for $binary" >&2
  exit 1
fi

cat > "$out/bin/medeval" <<LAUNCHER
#!/bin/sh
# Runs medeval with the libraries bundled beside it (see deploy/bundle.sh).
here=\$(dirname "\$(readlink -f "\$0")")/../lib
exec "\$here/$loader" --library-path "\$here" "\$here/medeval" "\$@"
LAUNCHER
chmod 755 "$out/bin/medeval" "$out/lib/$loader"
echo "bundled $(ls "$out/lib" | wc -l) files ($(du -sh "$out" | cut -f1)) in $out"
