#!/usr/bin/env bash
# Prints Deno's --v8-flags argument for the flags in FILE (default: compile/v8-flags beside this
# script), or nothing when it has none; exits 2 naming a line that is not one flag. The rules of
# compile/v8_flags.ts (tests/compile/v8_flags_test.ts checks both agree): one flag per line, '#'
# starts a comment, blank lines are ignored. bin/dxenstored runs it before it execs Deno.
set -euo pipefail
file="${1:-$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/v8-flags}"
flags="$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$file")"
[ -n "$flags" ] || exit 0
bad="$(grep -vE '^--?[A-Za-z0-9_][A-Za-z0-9_=.+/:-]*$' <<<"$flags" || true)"
if [ -n "$bad" ]; then
    echo "$file: not one V8 flag: \"$(head -n1 <<<"$bad")\"" >&2
    exit 2
fi
echo "--v8-flags=$(paste -sd, - <<<"$flags")"
