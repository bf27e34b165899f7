#!/usr/bin/env bash
# Only dsc_ symbols may leave the library: a host process links many
# libraries, and any other global name of ours could clash with theirs.
set -euo pipefail
OUT="${1:-lib}"
bad=$(nm -D --defined-only "$OUT/libdsc.so" | awk '$2 ~ /[A-Z]/ {print $3}' | grep -v '^dsc_' || true)
if [ -n "$bad" ]; then echo "libdsc.so exports non-dsc_ symbols:"; echo "$bad"; exit 1; fi
bad=$(nm --defined-only -g "$OUT/libdsc.a" 2>/dev/null | awk 'NF==3 && $2 ~ /[A-Z]/ {print $3}' | grep -v '^dsc_' || true)
if [ -n "$bad" ]; then echo "libdsc.a defines non-dsc_ globals:"; echo "$bad"; exit 1; fi
n=$(nm -D --defined-only "$OUT/libdsc.so" | grep -c ' dsc_')
soname=$(objdump -p "$OUT/libdsc.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libdsc.so.0" ] || { echo "bad SONAME '$soname'"; exit 1; }
# Every exported function is declared in the public header.
for s in $(nm -D --defined-only "$OUT/libdsc.so" | awk '{print $3}'); do
    grep -q "\b$s(" include/dsc.h || { echo "$s is exported but not in dsc.h"; exit 1; }
done
echo "exports: $n dsc_ symbols, SONAME $soname"
