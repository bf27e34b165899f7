#!/usr/bin/env bash
# The layering check must catch what it is there to catch: an include that
# points up a layer, one between the sibling layers, a bare include, a
# daemon reaching into the context, a tool using an internal header.
set -uo pipefail
CHECK="$(cd "$(dirname "$0")" && pwd)/check_layers.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
passed=0; failed=0
tree() {  # a minimal clean tree
    rm -rf "$T/p"; mkdir -p "$T/p"/{lib/core,lib/net,lib/s3,lib/peer,lib/cache,lib/api,dscd,examples}
    printf '#include "dsc.h"\n' > "$T/p/lib/core/common.h"
    printf '#include "core/common.h"\n' > "$T/p/lib/net/http.c"
    printf '#include "net/http.h"\n#include "core/common.h"\n' > "$T/p/lib/s3/client.c"
    printf '#include "cache/cache.h"\n#include "s3/client.h"\n' > "$T/p/lib/api/context.c"
    printf '#include "api/node.h"\n#include "dscd/server.h"\n' > "$T/p/dscd/main.c"
    printf '#include "dsc.h"\n#include "tool.h"\n' > "$T/p/examples/tool.c"
}
expect() {  # expect 0|1 NAME: run the check on the tree
    local want="$1" name="$2" got=0
    "$CHECK" "$T/p" >"$T/out" 2>&1 || got=1
    if [ "$got" = "$want" ]; then passed=$((passed + 1)); echo "  ok   $name"
    else failed=$((failed + 1)); echo "  FAIL $name (exit $got)"; cat "$T/out"; fi
}
tree; expect 0 "clean tree passes"
tree; printf '#include "cache/index.h"\n' >> "$T/p/lib/net/http.c"; expect 1 "net including cache fails"
tree; printf '#include "peer/ring.h"\n' >> "$T/p/lib/s3/client.c"; expect 1 "s3 including its sibling peer fails"
tree; printf '#include "common.h"\n' >> "$T/p/lib/s3/client.c"; expect 1 "bare include fails"
tree; printf '#include "api/context.h"\n' >> "$T/p/dscd/main.c"; expect 1 "dscd including the context's insides fails"
tree; printf '#include "cache/cache.h"\n' >> "$T/p/examples/tool.c"; expect 1 "a tool including an internal header fails"
tree; printf 'int x;\n' > "$T/p/lib/stray.c"; expect 1 "a source file directly in lib/ fails"
tree; printf '#include "cache/internal.h"\n' >> "$T/p/lib/api/context.c"; expect 1 "another layer including a folder's internal.h fails"
tree; printf '#include "cache/internal.h"\n' >> "$T/p/dscd/main.c"; expect 1 "dscd including a folder's internal.h fails"
tree; mkdir -p "$T/p/lib/cache"; printf '#include "cache/internal.h"\n' > "$T/p/lib/cache/read.c"; expect 0 "a folder including its own internal.h passes"
tree; mkdir -p "$T/p/lib/misc"; printf '\n' > "$T/p/lib/misc/a.c"; expect 1 "an unknown layer folder fails"
echo "check-layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
