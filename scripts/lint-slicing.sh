#!/usr/bin/env bash
# The grep-able rule for text from outside (issue 7): no indexing by a byte range that is
# not proven safe. `s[a..b]` panics when `b` is past the end or inside a multi-byte
# character, and with `panic = "abort"` one panic stops every camera. Use `get(a..b)`,
# `split_at_checked`, `strip_prefix` and friends; where an index is proven to be a character
# boundary within bounds (it came from `find`, say), say so on the line (or the line above)
# with `slice-ok: <why>`. Test code is exempt. Exit status 1 lists the offending lines.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r file; do
    # Everything from the first `#[cfg(test)]` on is test code.
    awk -v f="$file" '
        /#\[cfg\(test\)\]/ { exit }
        {
            line = $0; sub(/\/\/.*/, "", line)
            if (line ~ /[A-Za-z0-9_)\]]\[[^][]*\.\.[^][]*\]/ && line !~ /\[\.\.\]/ && $0 !~ /slice-ok/ && prev !~ /slice-ok/) {
                printf "%s:%d: %s\n", f, NR, $0; found = 1
            }
            prev = $0
        }
        END { exit found }
    ' "$file" || bad=1
done < <(find src -name '*.rs' ! -name tests.rs ! -path '*/tests/*' | sort)
if [ $bad = 1 ]; then
    echo "lint-slicing: byte-range indexing without a proof (use get(), or add 'slice-ok: <why>')" >&2
    exit 1
fi
echo "lint-slicing: ok"
