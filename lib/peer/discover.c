/* Peer discovery by DNS (discover.h). The resolver does the waiting and
 * retrying as resolv.conf says; this file tells an answer with no records
 * (the membership is empty) from no answer (the membership is unknown),
 * because dropping every peer on a DNS hiccup would send a whole cluster's
 * reads to S3 at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "core/atomic.h"
#include "peer/discover.h"
#include "peer/ring.h"

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_free(names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int names_add(names *s, const char *name)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return DSC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = dsc_strdup(name)))
        return DSC_ENOMEM;
    s->n++;
    return 0;
}

static int valid_dns_name(const char *s, size_t len)
{
    return len <= 253 && dsc_ring_host_ok(s, len);
}

int dsc_discovery_parse(const char *spec, dsc_discovery *out)
{
    memset(out, 0, sizeof *out);
    char q[200];
    const char *name;
    size_t len;
    if (strncmp(spec, "dns:", 4) == 0) {
        name = spec + 4;
        const char *colon = strrchr(name, ':');
        long port = 0;
        const char *d = colon ? colon + 1 : "";
        for (; dsc_isdigit((unsigned char)*d) && port <= 65535; d++)
            port = port * 10 + (*d - '0');
        if (!colon || *d || port < 1 || port > 65535 || colon[1] == '\0')
            return dsc_fail(DSC_EINVAL, "DSC_PEERS '%s': want dns:NAME:PORT "
                            "(a port of 1..65535)", dsc_printable(spec, q, sizeof q));
        len = (size_t)(colon - name);
        out->kind = DSC_PEERS_DNS;
        out->port = (unsigned)port;
    } else if (strncmp(spec, "srv:", 4) == 0) {
        name = spec + 4;
        len = strlen(name);
        out->kind = DSC_PEERS_SRV;
    } else {
        out->kind = DSC_PEERS_LIST;
        return 0;
    }
    if (!valid_dns_name(name, len))
        return dsc_fail(DSC_EINVAL, "DSC_PEERS '%s': '%.*s' is not a DNS name",
                        dsc_printable(spec, q, sizeof q), (int)len, name);
    out->name = dsc_strndup(name, len);
    return out->name ? 0 : DSC_ENOMEM;
}

void dsc_discovery_free(dsc_discovery *d)
{
    free(d->name);
    d->name = NULL;
}

/* Every address of name as a peer with port. No such name or no address
 * adds nothing and is not an error. */
static int add_addresses(names *out, const char *name, unsigned port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int e = getaddrinfo(name, NULL, &hints, &res);
    if (e == EAI_NONAME || e == EAI_NODATA)
        return 0;
    if (e)
        return dsc_fail(DSC_ENET, "peer discovery: resolving %s: %s", name,
                        e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
    int rc = 0;
    for (struct addrinfo *a = res; a && !rc; a = a->ai_next) {
        char addr[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN + 16];
        const void *bytes = a->ai_family == AF_INET
            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            !inet_ntop(a->ai_family, bytes, addr, sizeof addr))
            continue;
        snprintf(peer, sizeof peer, a->ai_family == AF_INET ? "%s:%u" : "[%s]:%u",
                 addr, port);
        rc = names_add(out, peer);
    }
    freeaddrinfo(res);
    return rc;
}

static int cancelled(const int *cancel)
{
    return cancel && dsc_atomic_get(cancel);
}

/* Every SRV record's target addresses with its port. */
static int add_srv(names *out, const char *name, const int *cancel)
{
    enum { ANSWER_MAX = 65536 };
    struct __res_state rs;
    memset(&rs, 0, sizeof rs);
    if (res_ninit(&rs))
        return dsc_fail(DSC_ENET, "peer discovery: cannot read the resolver "
                        "configuration");
    unsigned char *answer = malloc(ANSWER_MAX);
    int rc = 0;
    if (!answer) {
        rc = DSC_ENOMEM;
        goto done;
    }
    int len = res_nsearch(&rs, name, ns_c_in, ns_t_srv, answer, ANSWER_MAX);
    if (len < 0) {
        if (rs.res_h_errno != HOST_NOT_FOUND && rs.res_h_errno != NO_DATA)
            rc = dsc_fail(DSC_ENET, "peer discovery: SRV records of %s: %s",
                          name, hstrerror(rs.res_h_errno));
        goto done;
    }
    ns_msg msg;
    if (len > ANSWER_MAX || ns_initparse(answer, len, &msg)) {
        rc = dsc_fail(DSC_ENET, "peer discovery: SRV answer for %s is malformed",
                      name);
        goto done;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && !rc; i++) {
        ns_rr rr;
        char target[NS_MAXDNAME];
        if (ns_parserr(&msg, ns_s_an, i, &rr) || ns_rr_type(rr) != ns_t_srv ||
            ns_rr_rdlen(rr) < 7)
            continue;
        const unsigned char *rd = ns_rr_rdata(rr);
        unsigned port = ns_get16(rd + 4);
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target,
                      sizeof target) < 0 || port == 0 || !target[0] ||
            strcmp(target, ".") == 0)
            continue;              /* "." : the service is not offered */
        if (cancelled(cancel))
            rc = DSC_ECANCELED;
        else if (out->n > DSC_MAX_PEERS)
            break;                 /* refused by the caller */
        else
            rc = add_addresses(out, target, port);
    }
done:
    free(answer);
    res_nclose(&rs);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dsc_discovery_resolve(const dsc_discovery *d, const int *cancel, char **list)
{
    *list = NULL;
    names found = { 0 };
    dsc_buf joined = { 0 };
    int rc = d->kind == DSC_PEERS_DNS ? add_addresses(&found, d->name, d->port)
           : d->kind == DSC_PEERS_SRV ? add_srv(&found, d->name, cancel)
           : dsc_fail(DSC_EINVAL, "peer discovery: not a DNS spec");
    if (rc)
        goto done;
    if (found.n > DSC_MAX_PEERS) {
        rc = dsc_fail(DSC_ENET, "peer discovery: %s names more than %d peers",
                      d->name, DSC_MAX_PEERS);
        goto done;
    }
    if (found.n)    /* qsort wants a pointer even for none */
        qsort(found.v, found.n, sizeof *found.v, cmp_name);
    /* "[" sorts after digits: IPv4 entries come first. */
    int has_v4 = found.n && found.v[0][0] != '[';
    for (size_t i = 0; i < found.n; i++)
        if ((i == 0 || strcmp(found.v[i], found.v[i - 1])) &&
            !(has_v4 && found.v[i][0] == '['))
            dsc_buf_printf(&joined, "%s%s", joined.len ? "," : "", found.v[i]);
    *list = dsc_strdup(joined.data ? joined.data : "");
    rc = *list ? 0 : DSC_ENOMEM;
    if (dsc_buf_oom(&joined))
        rc = DSC_ENOMEM;
done:
    names_free(&found);
    dsc_buf_free(&joined);
    if (rc && *list) {
        free(*list);
        *list = NULL;
    }
    return rc;
}
