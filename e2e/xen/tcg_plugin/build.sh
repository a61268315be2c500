#!/bin/sh
# Builds the tcgcount QEMU plugin (tcgcount.c) and a qemu-system-x86_64 wrapper that loads it:
#   build.sh OUTDIR   ->  OUTDIR/tcgcount.so, OUTDIR/bin/qemu-system-x86_64
# With OUTDIR/bin first in PATH, ../shared/xen-qemu/run.sh's QEMU runs with the plugin when
# TCG_COUNTS_OUT names the counts file (TCG_COUNTS_ARGS: more of the plugin's arguments, comma-separated,
# e.g. hot=1), and unchanged otherwise (`deno task e2e:xen --tcg-counts`).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build.sh OUTDIR}
mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)
case $OUT in *,*) echo "build.sh: OUTDIR must not contain a comma (QEMU's -plugin syntax)" >&2; exit 2 ;; esac
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -pthread -o "$OUT/tcgcount.so" "$HERE/tcgcount.c"
# the real QEMU: the first on PATH that is not this wrapper
REAL=
IFS=:
for d in $PATH; do
  [ "$d" = "$OUT/bin" ] && continue
  [ -x "$d/qemu-system-x86_64" ] && { REAL=$d/qemu-system-x86_64; break; }
done
unset IFS
[ -n "$REAL" ] || { echo "build.sh: no qemu-system-x86_64 on PATH" >&2; exit 2; }
cat > "$OUT/bin/qemu-system-x86_64" <<WRAPPER
#!/bin/sh
# written by e2e/xen/tcg_plugin/build.sh: $REAL, with the tcgcount plugin when TCG_COUNTS_OUT is set
[ -n "\${TCG_COUNTS_OUT:-}" ] || exec "$REAL" "\$@"
case \$TCG_COUNTS_OUT in *,*) echo "TCG_COUNTS_OUT must not contain a comma" >&2; exit 2 ;; esac
exec "$REAL" "\$@" -plugin "file=$OUT/tcgcount.so,out=\$TCG_COUNTS_OUT\${TCG_COUNTS_ARGS:+,\$TCG_COUNTS_ARGS}"
WRAPPER
chmod +x "$OUT/bin/qemu-system-x86_64"
echo "$OUT/bin/qemu-system-x86_64 -> $REAL (+ $OUT/tcgcount.so when TCG_COUNTS_OUT is set)"
