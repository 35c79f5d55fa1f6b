/*
 * tests/unit/test_net_addr.c: the SSRF guard's address classifier, the
 * --allow-net CIDR list and X-Robots-Tag parsing. No network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/net.h"

#include <string.h>

static int cls_of(const char *host)
{
    struct sockaddr_storage ss;
    assert_int_equal(net_addr_parse(host, &ss), 0);
    return net_addr_classify((struct sockaddr *)&ss);
}

static void test_blocked_ipv4_ranges(void **state)
{
    assert_int_equal(cls_of("169.254.169.254"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("10.0.0.1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("10.255.255.255"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("172.16.0.1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("172.31.255.254"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("192.168.1.1"), NET_ADDR_PRIVATE);
    /* Both ends of each range: a prefix one bit too long or short moves an
     * end across the line. */
    assert_int_equal(cls_of("192.168.0.0"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("192.168.255.255"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("10.0.0.0"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("172.16.0.0"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("172.31.255.255"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("169.254.0.0"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("169.254.255.255"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("100.64.0.0"), NET_ADDR_CGNAT);
    assert_int_equal(cls_of("198.19.255.255"), NET_ADDR_RESERVED);
    assert_int_equal(cls_of("192.0.2.255"), NET_ADDR_RESERVED);
    assert_int_equal(cls_of("100.64.0.1"), NET_ADDR_CGNAT);
    assert_int_equal(cls_of("100.127.255.255"), NET_ADDR_CGNAT);
    assert_int_equal(cls_of("127.0.0.1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("127.255.0.9"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("0.0.0.0"), NET_ADDR_UNSPECIFIED);
    assert_int_equal(cls_of("224.0.0.1"), NET_ADDR_MULTICAST);
    assert_int_equal(cls_of("239.255.255.250"), NET_ADDR_MULTICAST);
    assert_int_equal(cls_of("255.255.255.255"), NET_ADDR_RESERVED);
    assert_int_equal(cls_of("198.18.0.1"), NET_ADDR_RESERVED);
}

static void test_public_ipv4_neighbours_allowed(void **state)
{
    /* Just outside each blocked range. */
    assert_int_equal(cls_of("8.8.8.8"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("172.15.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("172.32.0.0"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("100.63.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("100.128.0.0"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("169.253.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("11.0.0.0"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("192.169.0.1"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("192.169.0.0"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("192.167.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("9.255.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("169.255.0.0"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("198.17.255.255"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("198.20.0.0"), NET_ADDR_PUBLIC);
}

static void test_ipv4_odd_spellings(void **state)
{
    /* What getaddrinfo accepts, and an attacker would use. */
    assert_int_equal(cls_of("2130706433"), NET_ADDR_LOOPBACK); /* decimal 127.0.0.1 */
    assert_int_equal(cls_of("0177.0.0.1"), NET_ADDR_LOOPBACK); /* octal */
    assert_int_equal(cls_of("0x7f.0.0.1"), NET_ADDR_LOOPBACK); /* hex */
    assert_int_equal(cls_of("0x7f000001"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("127.1"), NET_ADDR_LOOPBACK);       /* short form */
    assert_int_equal(cls_of("0xa9fea9fe"), NET_ADDR_LINKLOCAL); /* 169.254.169.254 */
    assert_int_equal(cls_of("2852039166"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("012.0.0.1"), NET_ADDR_PRIVATE); /* octal 10.0.0.1 */
    assert_int_equal(cls_of("0"), NET_ADDR_UNSPECIFIED);
}

static void test_ipv6_ranges(void **state)
{
    assert_int_equal(cls_of("::1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("[::1]"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("::"), NET_ADDR_UNSPECIFIED);
    assert_int_equal(cls_of("fd00::1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("fc00::1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("fe80::1"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("ff02::1"), NET_ADDR_MULTICAST);
    assert_int_equal(cls_of("2001:db8::1"), NET_ADDR_RESERVED);
    assert_int_equal(cls_of("2606:4700:4700::1111"), NET_ADDR_PUBLIC);
}

static void test_ipv6_embedded_ipv4(void **state)
{
    assert_int_equal(cls_of("::ffff:10.0.0.1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("::ffff:127.0.0.1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("::ffff:169.254.169.254"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("::ffff:a9fe:a9fe"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("::ffff:100.64.1.1"), NET_ADDR_CGNAT);
    assert_int_equal(cls_of("::10.0.0.1"), NET_ADDR_PRIVATE); /* IPv4-compatible */
    assert_int_equal(cls_of("::127.0.0.1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("64:ff9b::a9fe:a9fe"), NET_ADDR_LINKLOCAL); /* NAT64 */
    assert_int_equal(cls_of("2002:0a00:0001::1"), NET_ADDR_PRIVATE);    /* 6to4 of 10.0.0.1 */
    assert_int_equal(cls_of("::ffff:8.8.8.8"), NET_ADDR_PUBLIC);
}

static void test_siit_translated(void **state)
{
    /* ::ffff:0:a.b.c.d, RFC 2765 section 2.1. */
    assert_int_equal(cls_of("::ffff:0:127.0.0.1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("::ffff:0:a9fe:a9fe"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("::ffff:0:192.168.255.255"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("::ffff:0:8.8.8.8"), NET_ADDR_PUBLIC);
}

static void test_nat64_local_use_prefix(void **state)
{
    /* 64:ff9b:1::/48, RFC 8215: refused whatever IPv4 address follows, at
     * any of RFC 6052's positions. */
    assert_int_equal(cls_of("64:ff9b:1::a9fe:a9fe"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("64:ff9b:1::8.8.8.8"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("64:ff9b:1:7f00:1::"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("64:ff9b:1:ffff:ffff:ffff:ffff:ffff"), NET_ADDR_PRIVATE);
    /* Its neighbours: the well-known prefix judges the IPv4 address, and
     * 64:ff9b:2:: is outside both. */
    assert_int_equal(cls_of("64:ff9b::8.8.8.8"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("64:ff9b:2::1"), NET_ADDR_PUBLIC);
}

static void test_teredo_server_and_client(void **state)
{
    /* 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, RFC 4380 section 4; the client
     * address is stored bit-inverted: 127.0.0.1 is 80ff:fffe, 10.0.0.1 is
     * f5ff:fffe, 169.254.169.254 is 5601:5601, 8.8.8.8 is f7f7:f7f7. */
    assert_int_equal(cls_of("2001:0:808:808:0:0:80ff:fffe"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("2001:0:808:808:8000:ffff:f5ff:fffe"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("2001:0:808:808::5601:5601"), NET_ADDR_LINKLOCAL);
    /* A public client behind a server in a blocked range. */
    assert_int_equal(cls_of("2001:0:7f00:1::f7f7:f7f7"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("2001:0:a00:1::f7f7:f7f7"), NET_ADDR_PRIVATE);
    /* Both public: reachable. Not inverted, 8.8.8.8 would be 247.247.247.247. */
    assert_int_equal(cls_of("2001:0:808:808::f7f7:f7f7"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("2001:0:808:808::808:808"), NET_ADDR_RESERVED);
    /* 2001:1::/32 is not Teredo. */
    assert_int_equal(cls_of("2001:1:7f00:1::80ff:fffe"), NET_ADDR_PUBLIC);
}

static void test_isatap_interface_ids(void **state)
{
    /* prefix::0:5efe:a.b.c.d and prefix::200:5efe:a.b.c.d, RFC 5214 6.1. */
    assert_int_equal(cls_of("2606:4700::5efe:10.0.0.1"), NET_ADDR_PRIVATE);
    assert_int_equal(cls_of("2606:4700::0:5efe:127.0.0.1"), NET_ADDR_LOOPBACK);
    assert_int_equal(cls_of("2606:4700::200:5efe:169.254.169.254"), NET_ADDR_LINKLOCAL);
    assert_int_equal(cls_of("2606:4700::100:5efe:100.64.0.1"), NET_ADDR_CGNAT);
    assert_int_equal(cls_of("2606:4700::200:5efe:8.8.8.8"), NET_ADDR_PUBLIC);
    /* Not an ISATAP id: another OUI, or other bits in the first byte. */
    assert_int_equal(cls_of("2606:4700::5eff:10.0.0.1"), NET_ADDR_PUBLIC);
    assert_int_equal(cls_of("2606:4700::400:5efe:10.0.0.1"), NET_ADDR_PUBLIC);
    /* Under a link-local prefix it stays link-local. */
    assert_int_equal(cls_of("fe80::5efe:8.8.8.8"), NET_ADDR_LINKLOCAL);
}

static void test_parse_rejects_names(void **state)
{
    struct sockaddr_storage ss;
    assert_int_equal(net_addr_parse("example.com", &ss), WP_EINVAL);
    assert_int_equal(net_addr_parse("1.2.3.4.5", &ss), WP_EINVAL);
    assert_int_equal(net_addr_parse("::g", &ss), WP_EINVAL);
}

static void test_acl_opens_only_its_range(void **state)
{
    net_acl *a = net_acl_new();
    wp_err err = {0};
    struct sockaddr_storage ss;
    assert_non_null(a);
    assert_int_equal(net_acl_add(a, "127.0.0.1/32", &err), 0);
    assert_int_equal(net_acl_add(a, "fd00::/8", &err), 0);

    assert_int_equal(net_addr_parse("127.0.0.1", &ss), 0);
    assert_int_equal(net_addr_check(a, (struct sockaddr *)&ss), NET_ADDR_PUBLIC);
    assert_int_equal(net_addr_parse("::ffff:127.0.0.1", &ss), 0);
    assert_int_equal(net_addr_check(a, (struct sockaddr *)&ss), NET_ADDR_PUBLIC);
    assert_int_equal(net_addr_parse("127.0.0.2", &ss), 0);
    assert_int_equal(net_addr_check(a, (struct sockaddr *)&ss), NET_ADDR_LOOPBACK);
    assert_int_equal(net_addr_parse("fd12::5", &ss), 0);
    assert_int_equal(net_addr_check(a, (struct sockaddr *)&ss), NET_ADDR_PUBLIC);
    assert_int_equal(net_addr_parse("fe80::1", &ss), 0);
    assert_int_equal(net_addr_check(a, (struct sockaddr *)&ss), NET_ADDR_LINKLOCAL);
    assert_int_equal(net_addr_parse("10.0.0.1", &ss), 0);
    assert_int_equal(net_addr_check(NULL, (struct sockaddr *)&ss), NET_ADDR_PRIVATE);

    assert_int_equal(net_acl_add(a, "127.0.0.0/33", &err), NET_EBADCIDR);
    assert_int_equal(net_acl_add(a, "0x7f.0.0.1/8", &err), NET_EBADCIDR);
    assert_int_equal(net_acl_add(a, "nonsense", &err), NET_EBADCIDR);
    assert_int_equal(net_acl_add(a, "/8", &err), NET_EBADCIDR);
    assert_non_null(strstr(err.msg, "/8"));
    net_acl_free(a);
}

static void test_acl_prefix_bits(void **state)
{
    net_acl *a = net_acl_new();
    struct sockaddr_storage ss;
    assert_int_equal(net_acl_add(a, "10.1.2.0/23", NULL), 0);
    assert_int_equal(net_addr_parse("10.1.3.255", &ss), 0);
    assert_true(net_acl_contains(a, (struct sockaddr *)&ss));
    assert_int_equal(net_addr_parse("10.1.4.0", &ss), 0);
    assert_false(net_acl_contains(a, (struct sockaddr *)&ss));
    assert_int_equal(net_addr_parse("10.1.1.255", &ss), 0);
    assert_false(net_acl_contains(a, (struct sockaddr *)&ss));
    net_acl_free(a);
}

static void test_robots_tag_directives(void **state)
{
    char hit[NET_DIRECTIVE_MAX] = "";
    const char *d = NET_DEFAULT_DIRECTIVES;
    assert_int_equal(net_robots_tag_optout("noai", "witpipe", d, hit), 1);
    assert_string_equal(hit, "noai");
    assert_int_equal(net_robots_tag_optout("nofollow, NoImageAI", "witpipe", d, hit), 1);
    assert_string_equal(hit, "noimageai");
    assert_int_equal(net_robots_tag_optout("nofollow, noarchive", "witpipe", d, hit), 0);
    assert_int_equal(net_robots_tag_optout("", "witpipe", d, hit), 0);
    /* Scoped to another robot: not for us. */
    assert_int_equal(net_robots_tag_optout("otherbot: noai", "witpipe", d, hit), 0);
    assert_int_equal(net_robots_tag_optout("otherbot: noai, noindex", "witpipe", d, hit), 0);
    /* Scoped to us (any of our tokens, any case). */
    assert_int_equal(net_robots_tag_optout("WitPipe: noindex", "witpipe,mybot", d, hit), 1);
    assert_string_equal(hit, "noindex");
    assert_int_equal(net_robots_tag_optout("otherbot: none, mybot: noai", "witpipe,mybot", d, hit),
                     1);
    assert_int_equal(net_robots_tag_optout("mybot: nofollow, otherbot: noai", "mybot", d, hit), 0);
    /* A valued directive is not a robot name. */
    assert_int_equal(
        net_robots_tag_optout("unavailable_after: 25 Jun 2010 15:00:00 PST, noai", "w", d, hit), 1);
    assert_int_equal(net_robots_tag_optout("max-image-preview: large", "w", d, hit), 0);
    /* --ignore-directive: the caller's list decides. */
    assert_int_equal(net_robots_tag_optout("noindex", "witpipe", "noai,noimageai", hit), 0);
    assert_int_equal(net_robots_tag_optout("noai", "witpipe", "", hit), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocked_ipv4_ranges),
        cmocka_unit_test(test_public_ipv4_neighbours_allowed),
        cmocka_unit_test(test_ipv4_odd_spellings),
        cmocka_unit_test(test_ipv6_ranges),
        cmocka_unit_test(test_ipv6_embedded_ipv4),
        cmocka_unit_test(test_siit_translated),
        cmocka_unit_test(test_nat64_local_use_prefix),
        cmocka_unit_test(test_teredo_server_and_client),
        cmocka_unit_test(test_isatap_interface_ids),
        cmocka_unit_test(test_parse_rejects_names),
        cmocka_unit_test(test_acl_opens_only_its_range),
        cmocka_unit_test(test_acl_prefix_bits),
        cmocka_unit_test(test_robots_tag_directives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
