/* dsc-cat: write an S3 object, or a range of it, to standard output.
 *
 *   dsc-cat [--offset N] [--length N] s3://bucket/key
 *
 * Exit status: 0 success, 1 the object could not be read, 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dsc.h"
#include "tool.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: dsc-cat [--no-sign-request] [--offset N] [--length N] s3://bucket/key\n"
            "Write the object (or LENGTH bytes from OFFSET) to stdout.\n"
            "Endpoint, region and credentials come from the AWS_* and DSC_*\n"
            "environment variables (see README.md).\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "offset", required_argument, NULL, 'o' },
        { "length", required_argument, NULL, 'l' },
        { "no-sign-request", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t offset = 0, length = UINT64_MAX;
    int c;
    while ((c = getopt_long(argc, argv, "o:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (parse_u64(optarg, &offset)) {
                fprintf(stderr, "dsc-cat: bad --offset '%s'\n", optarg);
                return 2;
            }
            break;
        case 'l':
            if (parse_u64(optarg, &length)) {
                fprintf(stderr, "dsc-cat: bad --length '%s'\n", optarg);
                return 2;
            }
            break;
        case 'N': tool_no_sign_request(); break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *url = argv[optind];
    dsc_ctx *ctx;
    int rc = dsc_ctx_open(NULL, &ctx);
    if (rc) {
        fprintf(stderr, "dsc-cat: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        return 1;
    }
    dsc_file *f;
    rc = dsc_open(ctx, url, &f);
    if (rc) {
        fprintf(stderr, "dsc-cat: %s: %s\n", dsc_strerror(rc), dsc_errmsg());
        dsc_ctx_close(ctx);
        return rc == DSC_EURL ? 2 : 1;
    }
    size_t bufsz = 8u << 20;
    char *buf = malloc(bufsz);
    int status = 0;
    uint64_t off = offset;
    uint64_t left = length;
    while (buf && left > 0) {
        size_t want = left < bufsz ? (size_t)left : bufsz;
        ssize_t n = dsc_pread(f, buf, want, off);
        if (n < 0) {
            fprintf(stderr, "dsc-cat: %s: %s\n", dsc_strerror((int)n),
                    dsc_errmsg());
            status = 1;
            break;
        }
        if (n == 0)
            break;
        if (write_all(buf, (size_t)n)) {
            if (errno != EPIPE)
                fprintf(stderr, "dsc-cat: write: %s\n", strerror(errno));
            status = 1;
            break;
        }
        off += (uint64_t)n;
        left -= (uint64_t)n;
    }
    if (!buf) {
        fprintf(stderr, "dsc-cat: out of memory\n");
        status = 1;
    }
    free(buf);
    dsc_close(f);
    dsc_ctx_close(ctx);
    return status;
}
