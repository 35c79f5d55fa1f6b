/*
 * tests/fuzz/fuzz_addr.c: libFuzzer target for the SSRF guard's address
 * code (net/net_addr.c): net_addr_parse agrees with the resolver's
 * inet_aton reading, a CIDR range accepted by net_acl_add contains its own
 * address, and IPv6 addresses that embed an IPv4 one (mapped, SIIT, NAT64,
 * 6to4, Teredo, ISATAP) are classed as that IPv4 address.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_addr_one(data, size));
    return 0;
}
