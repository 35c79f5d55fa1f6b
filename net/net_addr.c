/*
 * net/net_addr.c: the SSRF guard's address classifier and the --allow-net
 * CIDR list. Pure functions on socket addresses; no network.
 */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define ACL_MAX 64 /* --allow-net ranges kept */

struct acl_range {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network bytes (first 4 for IPv4) */
    int prefix;
};

struct net_acl {
    struct acl_range r[ACL_MAX];
    int n;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int in4(uint32_t a, uint32_t net, int prefix)
{
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    return (a & mask) == (net & mask);
}

/* IPv4 ranges that must never be contacted from a crawler (RFC 6890's
 * special-purpose registry, the ones that are not globally reachable). */
static int classify4(uint32_t a)
{
    if (in4(a, 0x00000000, 8))
        return NET_ADDR_UNSPECIFIED; /* "this network", RFC 791 */
    if (in4(a, 0x7f000000, 8))
        return NET_ADDR_LOOPBACK; /* RFC 1122 section 3.2.1.3 */
    if (in4(a, 0x0a000000, 8) || in4(a, 0xac100000, 12) || in4(a, 0xc0a80000, 16))
        return NET_ADDR_PRIVATE; /* RFC 1918 section 3 */
    if (in4(a, 0xa9fe0000, 16))
        return NET_ADDR_LINKLOCAL; /* RFC 3927; 169.254.169.254 is cloud metadata */
    if (in4(a, 0x64400000, 10))
        return NET_ADDR_CGNAT; /* RFC 6598 */
    if (in4(a, 0xe0000000, 4))
        return NET_ADDR_MULTICAST; /* RFC 5771 */
    if (in4(a, 0xf0000000, 4))
        return NET_ADDR_RESERVED; /* RFC 1112 section 4; includes broadcast */
    if (in4(a, 0xc0000000, 24) || in4(a, 0xc0000200, 24) || in4(a, 0xc6336400, 24) ||
        in4(a, 0xcb007100, 24) || in4(a, 0xc6120000, 15))
        return NET_ADDR_RESERVED; /* RFC 6890: IETF assignments, TEST-NETs, benchmarking */
    return NET_ADDR_PUBLIC;
}

static int classify6(const uint8_t *b)
{
    static const uint8_t zero10[10] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    int i, allzero = 1;

    for (i = 0; i < 16; i++)
        if (b[i] != 0)
            allzero = 0;
    if (allzero)
        return NET_ADDR_UNSPECIFIED;
    if (memcmp(b, zero10, 10) == 0 && b[10] == 0 && b[11] == 0 && be32(b + 12) == 1)
        return NET_ADDR_LOOPBACK; /* ::1 */
    /* Addresses that embed an IPv4 address reach it: ::ffff:a.b.c.d (mapped,
     * RFC 4291 section 2.5.5.2), ::a.b.c.d (compatible, 2.5.5.1), NAT64
     * 64:ff9b::/96 (RFC 6052) and 6to4 2002:AABB:CCDD::/48 (RFC 3056). */
    if (memcmp(b, zero10, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
        return classify4(be32(b + 12));
    if (memcmp(b, zero10, 10) == 0 && b[10] == 0 && b[11] == 0)
        return classify4(be32(b + 12));
    if (memcmp(b, nat64, 12) == 0)
        return classify4(be32(b + 12));
    if (b[0] == 0x20 && b[1] == 0x02)
        return classify4(be32(b + 2));
    /* SIIT's IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 section 2.1). */
    if (memcmp(b, zero10, 8) == 0 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
        return classify4(be32(b + 12));
    /* The local-use translation prefix 64:ff9b:1::/48 (RFC 8215 section 3):
     * not globally reachable, and where the IPv4 address sits depends on a
     * prefix length chosen by the local network; refused whole. */
    if (memcmp(b, nat64, 4) == 0 && b[4] == 0 && b[5] == 1)
        return NET_ADDR_PRIVATE;
    /* Teredo 2001:0000::/32 (RFC 4380 section 4): bytes 4-7 are the Teredo
     * server's IPv4 address, bytes 12-15 the client's, bit-inverted. Both
     * are reached (the server relays, the client is the peer): the first of
     * them that is not public decides. */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
        int server = classify4(be32(b + 4));
        int client = classify4(~be32(b + 12));
        return client != NET_ADDR_PUBLIC ? client : server;
    }
    if ((b[0] & 0xfe) == 0xfc)
        return NET_ADDR_PRIVATE; /* unique local fc00::/7, RFC 4193 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return NET_ADDR_LINKLOCAL; /* fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return NET_ADDR_PRIVATE; /* deprecated site-local fec0::/10 */
    if (b[0] == 0xff)
        return NET_ADDR_MULTICAST;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return NET_ADDR_RESERVED; /* documentation 2001:db8::/32 */
    if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero10, 6) == 0)
        return NET_ADDR_RESERVED; /* discard-only 100::/64 */
    /* ISATAP (RFC 5214 section 6.1): under any prefix, the interface id
     * 0000:5efe:a.b.c.d or 0200:5efe:a.b.c.d (the u bit set for a globally
     * unique IPv4 address; the g bit is ignored too) tunnels to a.b.c.d. */
    if ((b[8] & 0xfc) == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe)
        return classify4(be32(b + 12));
    return NET_ADDR_PUBLIC;
}

int net_addr_classify(const struct sockaddr *sa)
{
    if (sa == NULL)
        return NET_ADDR_UNKNOWN;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return classify4(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        return classify6(s6->sin6_addr.s6_addr);
    }
    return NET_ADDR_UNKNOWN;
}

const char *net_addr_class_name(int cls)
{
    switch (cls) {
    case NET_ADDR_PUBLIC:
        return "public";
    case NET_ADDR_LOOPBACK:
        return "loopback";
    case NET_ADDR_PRIVATE:
        return "private";
    case NET_ADDR_LINKLOCAL:
        return "link-local";
    case NET_ADDR_CGNAT:
        return "cgnat";
    case NET_ADDR_MULTICAST:
        return "multicast";
    case NET_ADDR_UNSPECIFIED:
        return "unspecified";
    case NET_ADDR_RESERVED:
        return "reserved";
    default:
        return "unknown";
    }
}

int net_addr_parse(const char *host, struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t n;
    memset(ss, 0, sizeof *ss);
    if (host == NULL)
        return WP_EINVAL;
    n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= sizeof tmp)
            return WP_EINVAL;
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        host = tmp;
    }
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return WP_EINVAL;
        s6->sin6_family = AF_INET6;
        return 0;
    }
    /* inet_aton accepts every spelling getaddrinfo does for numeric hosts
     * (decimal, octal and hex parts, 1 to 4 of them), which is what an
     * attacker would use to hide 127.0.0.1. */
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_aton(host, &s4->sin_addr) == 0)
        return WP_EINVAL;
    s4->sin_family = AF_INET;
    return 0;
}

net_acl *net_acl_new(void)
{
    return calloc(1, sizeof(net_acl));
}

void net_acl_free(net_acl *a)
{
    free(a);
}

int net_acl_add(net_acl *a, const char *cidr, wp_err *err)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *slash = strchr(cidr, '/');
    size_t hl = slash ? (size_t)(slash - cidr) : strlen(cidr);
    struct sockaddr_storage ss;
    struct acl_range r = {0};
    long prefix;
    char *end;

    if (a->n >= ACL_MAX)
        return wp_err_set(err, WP_ELIMIT, "--allow-net: more than %d ranges", ACL_MAX);
    if (hl == 0 || hl >= sizeof host)
        return wp_err_set(err, NET_EBADCIDR, "--allow-net '%s': not a CIDR range", cidr);
    memcpy(host, cidr, hl);
    host[hl] = '\0';
    /* A range is written in dotted quad or IPv6 text, not in the odd
     * spellings inet_aton tolerates. */
    if (strchr(host, ':') == NULL) {
        struct in_addr ia;
        if (inet_pton(AF_INET, host, &ia) != 1)
            return wp_err_set(err, NET_EBADCIDR, "--allow-net '%s': not a CIDR range", cidr);
    }
    if (net_addr_parse(host, &ss) != 0)
        return wp_err_set(err, NET_EBADCIDR, "--allow-net '%s': not a CIDR range", cidr);
    r.family = ss.ss_family;
    if (r.family == AF_INET)
        memcpy(r.addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else
        memcpy(r.addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    prefix = r.family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        long max = prefix;
        prefix = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || prefix < 0 || prefix > max)
            return wp_err_set(err, NET_EBADCIDR, "--allow-net '%s': bad prefix length", cidr);
    }
    r.prefix = (int)prefix;
    a->r[a->n++] = r;
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int net_acl_contains(const net_acl *a, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    int have4 = 0, have6 = 0;
    if (a == NULL || sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        have4 = 1;
    } else if (sa->sa_family == AF_INET6) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        have6 = 1;
        if (memcmp(v6, mapped, 12) == 0) { /* ::ffff:a.b.c.d matches IPv4 ranges */
            memcpy(v4, v6 + 12, 4);
            have4 = 1;
        }
    }
    for (int i = 0; i < a->n; i++) {
        const struct acl_range *r = &a->r[i];
        if (r->family == AF_INET && have4 && prefix_match(v4, r->addr, r->prefix))
            return 1;
        if (r->family == AF_INET6 && have6 && prefix_match(v6, r->addr, r->prefix))
            return 1;
    }
    return 0;
}

int net_addr_check(const net_acl *a, const struct sockaddr *sa)
{
    int cls = net_addr_classify(sa);
    if (cls == NET_ADDR_PUBLIC)
        return NET_ADDR_PUBLIC;
    if (cls != NET_ADDR_UNKNOWN && net_acl_contains(a, sa))
        return NET_ADDR_PUBLIC;
    return cls;
}
