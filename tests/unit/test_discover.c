/* Peer discovery specs: strict parsing, and resolution of a name the
 * host knows without a DNS server (localhost, from /etc/hosts). The DNS
 * server cases (records changing, SRV, no answer) are in
 * tests/integration/test_peer_discovery.py, with a real dnsmasq. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "peer/discover.h"
#include "unittest.h"

static void test_specs(void **state)
{
    (void)state;
    dsc_discovery d;
    assert_int_equal(dsc_discovery_parse("dns:dscd.ns.svc.cluster.local:7070", &d), 0);
    assert_int_equal(d.kind, DSC_PEERS_DNS);
    assert_string_equal(d.name, "dscd.ns.svc.cluster.local");
    assert_int_equal(d.port, 7070);
    dsc_discovery_free(&d);
    assert_int_equal(dsc_discovery_parse("srv:_dsc._tcp.dscd.ns", &d), 0);
    assert_int_equal(d.kind, DSC_PEERS_SRV);
    assert_string_equal(d.name, "_dsc._tcp.dscd.ns");
    dsc_discovery_free(&d);
    /* Anything else is a fixed list, checked by the ring. */
    assert_int_equal(dsc_discovery_parse("10.0.0.1:7070,10.0.0.2:7070", &d), 0);
    assert_int_equal(d.kind, DSC_PEERS_LIST);
    assert_null(d.name);

    static const struct { const char *spec, *why; } bad[] = {
        { "dns:", "want dns:NAME:PORT" }, { "dns:name", "want dns:NAME:PORT" },
        { "dns:name:", "want dns:NAME:PORT" }, { "dns:name:0", "want dns:NAME:PORT" },
        { "dns:name:65536", "want dns:NAME:PORT" }, { "dns:name:70x", "want dns:NAME:PORT" },
        { "dns::7070", "is not a DNS name" }, { "dns:a b:7070", "is not a DNS name" },
        { "dns:a/b:7070", "is not a DNS name" }, { "srv:", "is not a DNS name" },
        { "srv:x,y", "is not a DNS name" },
        { "dns:x:a0000000000000000000", "want dns:NAME:PORT" },
        { "dns:x:99999999999999999999", "want dns:NAME:PORT" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (dsc_discovery_parse(bad[i].spec, &d) != DSC_EINVAL)
            fail_msg("'%s' was accepted", bad[i].spec);
        if (!strstr(dsc_errmsg(), bad[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].spec, dsc_errmsg(),
                     bad[i].why);
        assert_null(d.name);
    }
}

static void test_localhost_resolves_to_sorted_peers(void **state)
{
    (void)state;
    dsc_discovery d;
    char *list = NULL;
    assert_int_equal(dsc_discovery_parse("dns:localhost:7070", &d), 0);
    assert_int_equal(dsc_discovery_resolve(&d, NULL, &list), 0);
    /* 127.0.0.1 once; ::1 (where /etc/hosts has it) is left out: a
     * dual-stack node is one peer, by its IPv4 address. */
    if (strcmp(list, "127.0.0.1:7070"))
        fail_msg("localhost resolved to '%s'", list);
    free(list);
    dsc_discovery_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_localhost_resolves_to_sorted_peers),
    };
    return cmocka_run_group_tests_name("discover", tests, NULL, NULL);
}
