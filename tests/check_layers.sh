#!/usr/bin/env bash
# The layering rule of lib/ (lib/README.md): a folder per layer, and an
# include may only point to its own folder or to a layer below it.
#
#   api 5  >  fetch 4  >  cache 3  >  s3 2, peer 2  >  net 1  >  core 0
#
# s3 and peer are siblings: neither includes the other. Every quoted
# include inside lib/ names its folder ("cache/index.h"); only "dsc.h" (the
# public header) is bare. A folder's internal.h is for that folder only. dscd/ is a program on top of the library: it may
# use what a peer server needs (core, cache, peer and api/node.h) but not
# the context's insides (api/context.h) nor the fetch pool. Tools, benches
# and integration tests use the public header only.
#
# Usage: check_layers.sh [ROOT]    (default: the project). Prints each
# violation as FILE:LINE and exits 1 if there is any.
set -uo pipefail
ROOT="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$ROOT" || exit 2
shopt -s nullglob

rank() {
    case "$1" in
    core) echo 0 ;; net) echo 1 ;; s3|peer) echo 2 ;; cache) echo 3 ;;
    fetch) echo 4 ;; api) echo 5 ;; *) echo -1 ;;
    esac
}

bad=0; checked=0
violation() { echo "layers: $1: $2"; bad=$((bad + 1)); }

# includes FILE: "LINE INCLUDED" for each #include "..." in FILE
includes() {
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$1" |
        sed -E 's/^([0-9]+):.*"([^"]+)".*/\1 \2/'
}

for dir in lib/*/; do
    layer=$(basename "$dir")
    r=$(rank "$layer")
    if [ "$r" -lt 0 ]; then
        violation "$dir" "folder is not a known layer (core net s3 peer cache fetch api)"
        continue
    fi
    for f in "$dir"*.c "$dir"*.h; do
        checked=$((checked + 1))
        while read -r line inc; do
            [ -n "$inc" ] || continue
            [ "$inc" = "dsc.h" ] && continue
            case "$inc" in
            */*) ;;
            *) violation "$f:$line" "\"$inc\" does not name its folder"; continue ;;
            esac
            to=${inc%%/*}
            tr=$(rank "$to")
            if [ "${inc#*/}" = "internal.h" ] && [ "$to" != "$layer" ]; then
                violation "$f:$line" "\"$inc\" is private to lib/$to/"
            elif [ "$tr" -lt 0 ]; then
                violation "$f:$line" "\"$inc\" is not in a layer of lib/"
            elif [ "$to" != "$layer" ] && [ "$tr" -ge "$r" ]; then
                violation "$f:$line" "$layer (layer $r) includes \"$inc\" (layer $tr): dependencies point down only"
            fi
        done < <(includes "$f")
    done
done

for f in lib/*.c lib/*.h; do
    violation "$f" "source directly in lib/: put it in its layer's folder"
done

for f in dscd/*.c dscd/*.h; do
    checked=$((checked + 1))
    while read -r line inc; do
        [ -n "$inc" ] || continue
        case "$inc" in
        */internal.h) violation "$f:$line" "\"$inc\" is private to its folder" ;;
        dsc.h|dscd/*|core/*|net/*|cache/*|peer/*|api/node.h) ;;
        *) violation "$f:$line" "dscd includes \"$inc\": it may use core, net, cache, peer and api/node.h" ;;
        esac
    done < <(includes "$f")
done

for f in examples/*.c examples/*.cpp bench/*.c tests/integration/*.c tests/integration/*.h; do
    checked=$((checked + 1))
    while read -r line inc; do
        [ -n "$inc" ] || continue
        case "$inc" in
        */*) violation "$f:$line" "\"$inc\": tools and integration tests use the public API (dsc.h) only" ;;
        esac
    done < <(includes "$f")
done

if [ "$checked" -eq 0 ]; then
    echo "layers: nothing to check under $ROOT"; exit 2
fi
if [ "$bad" -gt 0 ]; then
    echo "layers: $bad violation(s) in $checked files"; exit 1
fi
echo "layers: $checked files, includes point down only"
