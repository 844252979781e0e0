/* Unit tests of pki/names.c: DNS names, SPIFFE IDs, IP addresses and ranges,
 * GENERAL_NAME formatting and the name-constraint precheck. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pki/names.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *err_msg(const struct pqm_err *e)
{
    return pqm__err_str(e);
}

/* --- pqm__dns_valid ---------------------------------------------------------------- */

struct dns_row {
    const char *why;
    const char *name;
    int ok;
};

static void test_dns_valid(void **state)
{
    (void)state;
    char label63[64], label64[65], name253[254], name254[255];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'a', 64);
    label64[64] = '\0';
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    snprintf(name253, sizeof(name253), "%s.%s.%s.%.61s", label63, label63, label63, label63);
    snprintf(name254, sizeof(name254), "%s.%s.%s.%.62s", label63, label63, label63, label63);
    assert_int_equal(strlen(name253), 253);
    assert_int_equal(strlen(name254), 254);

    const struct dns_row rows[] = {
        {"plain", "api.example.com", 1},
        {"wildcard first", "*.example.com", 1},
        {"hyphen inside", "a-b.c", 1},
        {"single label", "localhost", 1},
        {"digits", "123.example.com", 1},
        {"punycode", "xn--bcher-kva.example", 1},
        {"63-char label", label63, 1},
        {"253-char name", name253, 1},
        {"empty", "", 0},
        {"leading hyphen", "-a.com", 0},
        {"trailing hyphen in label", "a-.com", 0},
        {"empty label", "a..com", 0},
        {"leading dot", ".a.com", 0},
        {"trailing dot", "a.com.", 0},
        {"underscore", "a_b.com", 0},
        {"64-char label", label64, 0},
        {"254-char name", name254, 0},
        {"space", "exa mple.com", 0},
        {"wildcard not first", "a.*.com", 0},
        {"bare wildcard", "*", 0},
        {"wildcard with nothing after", "*.", 0},
        {"double wildcard", "*.*.example.com", 0},
        {"partial wildcard", "a*.example.com", 0},
        {"slash", "a/b.com", 0},
        {"non-ASCII", "b\xc3\xbc" "cher.example", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        int rc = pqm__dns_valid(rows[i].name, &e);
        if (rows[i].ok && rc != 0)
            TU_ROW_FAIL(bad, "row %zu (%s) '%.70s': refused: %s", i, rows[i].why, rows[i].name,
                        err_msg(&e));
        else if (!rows[i].ok && rc != -1)
            TU_ROW_FAIL(bad, "row %zu (%s) '%.70s': accepted (rc %d)", i, rows[i].why,
                        rows[i].name, rc);
        else if (!rows[i].ok && e.msg[0] == '\0')
            TU_ROW_FAIL(bad, "row %zu (%s): refused without a reason", i, rows[i].why);
    }
    TU_ROWS_DONE(bad);
}

/* --- pqm__spiffe_td_valid / pqm__spiffe_parse --------------------------------------- */

struct td_row {
    const char *td;
    int ok;
};

static void test_spiffe_td_valid(void **state)
{
    (void)state;
    char td255[256], td256[257];
    memset(td255, 'a', 255);
    td255[255] = '\0';
    memset(td256, 'a', 256);
    td256[256] = '\0';
    const struct td_row rows[] = {
        {"cluster.local", 1}, {"a-b_c.9", 1}, {td255, 1},       {"", 0},
        {"Cluster.local", 0}, {"td:80", 0},   {"user@td", 0},   {"t d", 0},
        {"td/x", 0},          {td256, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        int rc = pqm__spiffe_td_valid(rows[i].td, &e);
        if (rc != (rows[i].ok ? 0 : -1))
            TU_ROW_FAIL(bad, "row %zu '%.40s': got %d, want %s (%s)", i, rows[i].td, rc,
                        rows[i].ok ? "valid" : "invalid", err_msg(&e));
    }
    TU_ROWS_DONE(bad);
}

struct spiffe_row {
    const char *why;
    const char *uri;
    const char *td; /* expected trust domain; NULL: refused */
};

static void test_spiffe_parse(void **state)
{
    (void)state;
    /* "spiffe://td/" is 12 characters; fill the rest of the path. */
    char max_ok[PQM_SPIFFE_MAX + 1], too_long[PQM_SPIFFE_MAX + 2];
    snprintf(max_ok, sizeof(max_ok), "spiffe://td/");
    memset(max_ok + 12, 'a', PQM_SPIFFE_MAX - 12);
    max_ok[PQM_SPIFFE_MAX] = '\0';
    snprintf(too_long, sizeof(too_long), "spiffe://td/");
    memset(too_long + 12, 'a', PQM_SPIFFE_MAX + 1 - 12);
    too_long[PQM_SPIFFE_MAX + 1] = '\0';

    const struct spiffe_row rows[] = {
        {"typical", "spiffe://cluster.local/ns/production/sa/frontend-service", "cluster.local"},
        {"one segment", "spiffe://td/a", "td"},
        {"path characters", "spiffe://example.org/A.b_c-9/x", "example.org"},
        {"three dots is a name", "spiffe://td/...", "td"},
        {"2048 characters", max_ok, "td"},
        {"upper-case scheme", "SPIFFE://x/y", NULL},
        {"other scheme", "https://td/a", NULL},
        {"scheme only", "spiffe://", NULL},
        {"no path", "spiffe://td", NULL},
        {"empty path", "spiffe://td/", NULL},
        {"empty segment", "spiffe://td//a", NULL},
        {"dot segment", "spiffe://td/./a", NULL},
        {"dot-dot segment", "spiffe://td/../a", NULL},
        {"trailing dot-dot", "spiffe://td/a/..", NULL},
        {"upper-case trust domain", "spiffe://TD/a", NULL},
        {"port", "spiffe://td:80/a", NULL},
        {"user info", "spiffe://user@td/a", NULL},
        {"query", "spiffe://td/a?q", NULL},
        {"fragment", "spiffe://td/a#f", NULL},
        {"trailing slash", "spiffe://td/a/", NULL},
        {"percent-encoding", "spiffe://td/a%20b", NULL},
        {"longer than 2048", too_long, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        char td[256] = "untouched";
        int rc = pqm__spiffe_parse(rows[i].uri, td, sizeof(td), &e);
        if (rows[i].td != NULL) {
            if (rc != 0)
                TU_ROW_FAIL(bad, "row %zu (%s): refused: %.200s", i, rows[i].why, err_msg(&e));
            else if (strcmp(td, rows[i].td) != 0)
                TU_ROW_FAIL(bad, "row %zu (%s): trust domain '%s', want '%s'", i, rows[i].why, td,
                            rows[i].td);
        } else if (rc != -1) {
            TU_ROW_FAIL(bad, "row %zu (%s) '%.60s': accepted (rc %d)", i, rows[i].why,
                        rows[i].uri, rc);
        } else if (e.msg[0] == '\0') {
            TU_ROW_FAIL(bad, "row %zu (%s): refused without a reason", i, rows[i].why);
        }
    }
    TU_ROWS_DONE(bad);
}

static void test_spiffe_parse_td_buffer_too_small(void **state)
{
    (void)state;
    struct pqm_err e = {{0}};
    char td[8];
    assert_int_equal(pqm__spiffe_parse("spiffe://cluster.local/x", td, sizeof(td), &e), -1);
    assert_int_equal(pqm__spiffe_parse("spiffe://short/x", td, sizeof(td), &e), 0);
    assert_string_equal(td, "short");
}

/* --- pqm__ip_parse ------------------------------------------------------------------ */

struct ip_row {
    const char *text;
    int len; /* 4, 16, or -1 */
    unsigned char bytes[16];
};

static void test_ip_parse(void **state)
{
    (void)state;
    const struct ip_row rows[] = {
        {"127.0.0.1", 4, {127, 0, 0, 1}},
        {"10.20.30.40", 4, {10, 20, 30, 40}},
        {"0.0.0.0", 4, {0}},
        {"255.255.255.255", 4, {255, 255, 255, 255}},
        {"::1", 16, {[15] = 1}},
        {"::", 16, {0}},
        {"fd00::1:2", 16, {0xfd, 0, [13] = 1, [15] = 2}},
        {"::ffff:1.2.3.4", 16, {[10] = 0xff, [11] = 0xff, [12] = 1, 2, 3, 4}},
        {"", -1, {0}},
        {"256.0.0.1", -1, {0}},
        {"1.2.3", -1, {0}},
        {"1.2.3.4.5", -1, {0}},
        {"localhost", -1, {0}},
        {" 1.2.3.4", -1, {0}},
        {"1.2.3.4 ", -1, {0}},
        {"1.2.3.4/32", -1, {0}},
        {"::1::2", -1, {0}},
        {"fe80::1%eth0", -1, {0}},
        {"[::1]", -1, {0}},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        unsigned char out[16];
        memset(out, 0xAA, sizeof(out));
        int len = pqm__ip_parse(rows[i].text, out);
        if (len != rows[i].len)
            TU_ROW_FAIL(bad, "row %zu '%s': length %d, want %d", i, rows[i].text, len,
                        rows[i].len);
        else if (len > 0 && memcmp(out, rows[i].bytes, (size_t)len) != 0)
            TU_ROW_FAIL(bad, "row %zu '%s': wrong address bytes", i, rows[i].text);
    }
    TU_ROWS_DONE(bad);
}

/* --- pqm__cidr_parse ---------------------------------------------------------------- */

struct cidr_row {
    const char *why;
    const char *text;
    int len;
    unsigned char addr[16], mask[16];
};

static void test_cidr_parse(void **state)
{
    (void)state;
    const struct cidr_row rows[] = {
        {"v4 /8", "10.0.0.0/8", 4, {10}, {0xff}},
        {"v4 host", "127.0.0.1/32", 4, {127, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff}},
        {"v4 everything", "0.0.0.0/0", 4, {0}, {0}},
        {"v4 /25", "192.168.1.128/25", 4, {192, 168, 1, 128}, {0xff, 0xff, 0xff, 0x80}},
        {"v4 /12", "172.16.0.0/12", 4, {172, 16}, {0xff, 0xf0}},
        {"v6 host", "::1/128", 16, {[15] = 1},
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff}},
        {"v6 /8", "fd00::/8", 16, {0xfd}, {0xff}},
        {"v6 /7", "fc00::/7", 16, {0xfc}, {0xfe}},
        {"v6 everything", "::/0", 16, {0}, {0}},
        {"v4 host bits set", "10.0.0.1/8", -1, {0}, {0}},
        {"v4 host bits set /31", "10.0.0.1/31", -1, {0}, {0}},
        {"v6 host bits set", "fd00::1/8", -1, {0}, {0}},
        {"v4 prefix 33", "10.0.0.0/33", -1, {0}, {0}},
        {"v6 prefix 129", "::/129", -1, {0}, {0}},
        {"negative prefix", "10.0.0.0/-1", -1, {0}, {0}},
        {"no prefix", "10.0.0.0", -1, {0}, {0}},
        {"empty prefix", "10.0.0.0/", -1, {0}, {0}},
        {"prefix with junk", "10.0.0.0/8x", -1, {0}, {0}},
        {"prefix with space", "10.0.0.0/ 8", -1, {0}, {0}},
        {"prefix with sign", "10.0.0.0/+8", -1, {0}, {0}},
        {"two slashes", "10.0.0.0/8/8", -1, {0}, {0}},
        {"no address", "/8", -1, {0}, {0}},
        {"garbage address", "garbage/8", -1, {0}, {0}},
        {"empty", "", -1, {0}, {0}},
        {"very long address", "1111111111111111111111111111111111111111111111111111111111111111/8",
         -1, {0}, {0}},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        unsigned char addr[16], mask[16];
        memset(addr, 0xAA, sizeof(addr));
        memset(mask, 0xAA, sizeof(mask));
        int len = pqm__cidr_parse(rows[i].text, addr, mask);
        if (len != rows[i].len)
            TU_ROW_FAIL(bad, "row %zu (%s) '%s': got %d, want %d", i, rows[i].why, rows[i].text,
                        len, rows[i].len);
        else if (len > 0 && memcmp(addr, rows[i].addr, (size_t)len) != 0)
            TU_ROW_FAIL(bad, "row %zu (%s): wrong address", i, rows[i].why);
        else if (len > 0 && memcmp(mask, rows[i].mask, (size_t)len) != 0)
            TU_ROW_FAIL(bad, "row %zu (%s): wrong mask", i, rows[i].why);
    }
    TU_ROWS_DONE(bad);
}

/* --- GENERAL_NAME constructors and pqm__gn_format ------------------------------------ */

enum gn_kind { GN_DNS, GN_IP, GN_IP_RANGE, GN_URI };

static GENERAL_NAME *make_gn(enum gn_kind k, const char *v, struct pqm_err *e)
{
    switch (k) {
    case GN_DNS:
        return pqm__gn_dns(v, e);
    case GN_IP:
        return pqm__gn_ip(v, e);
    case GN_IP_RANGE:
        return pqm__gn_ip_range(v, e);
    case GN_URI:
        return pqm__gn_uri(v, e);
    default:
        return NULL;
    }
}

struct gn_row {
    enum gn_kind kind;
    const char *value;
    int type;              /* expected GEN_* type */
    int octets;            /* expected length of the value */
    const char *formatted; /* NULL: the constructor refuses */
};

static void test_gn_build_and_format(void **state)
{
    (void)state;
    const struct gn_row rows[] = {
        {GN_DNS, "x", GEN_DNS, 1, "DNS:x"},
        {GN_DNS, "api.example.com", GEN_DNS, 15, "DNS:api.example.com"},
        {GN_IP, "127.0.0.1", GEN_IPADD, 4, "IP:127.0.0.1"},
        {GN_IP, "::1", GEN_IPADD, 16, "IP:::1"},
        {GN_IP_RANGE, "127.0.0.0/8", GEN_IPADD, 8, "IP:127.0.0.0/8"},
        {GN_IP_RANGE, "192.168.1.128/25", GEN_IPADD, 8, "IP:192.168.1.128/25"},
        {GN_IP_RANGE, "fd00::/8", GEN_IPADD, 32, "IP:fd00::/8"},
        {GN_IP_RANGE, "::1/128", GEN_IPADD, 32, "IP:::1/128"},
        {GN_URI, "spiffe://cluster.local/ns/a", GEN_URI, 27, "URI:spiffe://cluster.local/ns/a"},
        {GN_DNS, "a..com", 0, 0, NULL},
        {GN_DNS, "", 0, 0, NULL},
        {GN_IP, "not-an-ip", 0, 0, NULL},
        {GN_IP, "10.0.0.0/8", 0, 0, NULL},
        {GN_IP_RANGE, "10.0.0.1/8", 0, 0, NULL},
        {GN_IP_RANGE, "10.0.0.1", 0, 0, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        GENERAL_NAME *gn = make_gn(rows[i].kind, rows[i].value, &e);
        if (rows[i].formatted == NULL) {
            if (gn != NULL)
                TU_ROW_FAIL(bad, "row %zu '%s': accepted", i, rows[i].value);
            else if (e.msg[0] == '\0')
                TU_ROW_FAIL(bad, "row %zu '%s': refused without a reason", i, rows[i].value);
            GENERAL_NAME_free(gn);
            continue;
        }
        if (gn == NULL) {
            TU_ROW_FAIL(bad, "row %zu '%s': refused: %s", i, rows[i].value, err_msg(&e));
            continue;
        }
        int type = -1;
        const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &type);
        char out[300];
        pqm__gn_format(gn, out, sizeof(out));
        int len = ASN1_STRING_length(s);
        GENERAL_NAME_free(gn);
        if (type != rows[i].type || len != rows[i].octets)
            TU_ROW_FAIL(bad, "row %zu '%s': type %d length %d, want %d %d", i, rows[i].value,
                        type, len, rows[i].type, rows[i].octets);
        else if (strcmp(out, rows[i].formatted) != 0)
            TU_ROW_FAIL(bad, "row %zu: formatted '%s', want '%s'", i, out, rows[i].formatted);
    }
    TU_ROWS_DONE(bad);
}

static void test_gn_format_truncates(void **state)
{
    (void)state;
    struct pqm_err e = {{0}};
    GENERAL_NAME *gn = pqm__gn_dns("example.com", &e);
    assert_non_null(gn);
    char out[8];
    memset(out, 'Z', sizeof(out));
    pqm__gn_format(gn, out, sizeof(out));
    GENERAL_NAME_free(gn);
    assert_string_equal(out, "DNS:exa");
}

/* --- pqm__nc_precheck --------------------------------------------------------------- */

static void push_subtree(STACK_OF(GENERAL_SUBTREE) **st, GENERAL_NAME *gn)
{
    assert_non_null(gn);
    if (*st == NULL)
        *st = sk_GENERAL_SUBTREE_new_null();
    assert_non_null(*st);
    GENERAL_SUBTREE *sub = GENERAL_SUBTREE_new();
    assert_non_null(sub);
    GENERAL_NAME_free(sub->base);
    sub->base = gn;
    assert_true(sk_GENERAL_SUBTREE_push(*st, sub) > 0);
}

/* The constraint sets the rows pick from. */
enum nc_kind {
    NC_PERMIT,      /* permitted DNS example.com, IP 127.0.0.0/8, URI cluster.local */
    NC_DNS_ONLY,    /* permitted DNS example.com: other types unconstrained */
    NC_EXCLUDE,     /* permitted DNS example.com; excluded DNS bad.example.com, IP 10.0.0.0/8 */
    NC_NONE_IP,     /* excluded 0.0.0.0/0 and ::/0: no IP address at all */
    NC_COUNT
};

struct nc_state {
    NAME_CONSTRAINTS *nc[NC_COUNT];
};

static int nc_setup(void **state)
{
    struct nc_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    struct pqm_err e = {{0}};
    for (int i = 0; i < NC_COUNT; i++) {
        s->nc[i] = NAME_CONSTRAINTS_new();
        assert_non_null(s->nc[i]);
    }
    push_subtree(&s->nc[NC_PERMIT]->permittedSubtrees, pqm__gn_dns("example.com", &e));
    push_subtree(&s->nc[NC_PERMIT]->permittedSubtrees, pqm__gn_ip_range("127.0.0.0/8", &e));
    push_subtree(&s->nc[NC_PERMIT]->permittedSubtrees, pqm__gn_uri("cluster.local", &e));

    push_subtree(&s->nc[NC_DNS_ONLY]->permittedSubtrees, pqm__gn_dns("example.com", &e));

    push_subtree(&s->nc[NC_EXCLUDE]->permittedSubtrees, pqm__gn_dns("example.com", &e));
    push_subtree(&s->nc[NC_EXCLUDE]->excludedSubtrees, pqm__gn_dns("bad.example.com", &e));
    push_subtree(&s->nc[NC_EXCLUDE]->excludedSubtrees, pqm__gn_ip_range("10.0.0.0/8", &e));

    push_subtree(&s->nc[NC_NONE_IP]->excludedSubtrees, pqm__gn_ip_range("0.0.0.0/0", &e));
    push_subtree(&s->nc[NC_NONE_IP]->excludedSubtrees, pqm__gn_ip_range("::/0", &e));
    *state = s;
    return 0;
}

static int nc_teardown(void **state)
{
    struct nc_state *s = *state;
    for (int i = 0; i < NC_COUNT; i++)
        NAME_CONSTRAINTS_free(s->nc[i]);
    free(s);
    return 0;
}

struct nc_row {
    enum nc_kind nc;
    enum gn_kind kind;
    const char *value;
    int ok;
    const char *msg1, *msg2; /* refused: both must be in the message */
};

static void test_nc_precheck(void **state)
{
    struct nc_state *s = *state;
    const struct nc_row rows[] = {
        {NC_PERMIT, GN_DNS, "api.example.com", 1, NULL, NULL},
        {NC_PERMIT, GN_DNS, "example.com", 1, NULL, NULL},
        {NC_PERMIT, GN_DNS, "a.b.example.com", 1, NULL, NULL},
        {NC_PERMIT, GN_DNS, "API.EXAMPLE.COM", 1, NULL, NULL},
        {NC_PERMIT, GN_DNS, "*.example.com", 1, NULL, NULL},
        {NC_PERMIT, GN_DNS, "evil.org", 0, "example.com", "DNS:evil.org"},
        {NC_PERMIT, GN_DNS, "notexample.com", 0, "example.com", "notexample.com"},
        {NC_PERMIT, GN_DNS, "api.example.com.evil.org", 0, "example.com", "evil.org"},
        {NC_PERMIT, GN_DNS, "example.co", 0, "example.com", "example.co"},
        {NC_PERMIT, GN_IP, "127.0.0.1", 1, NULL, NULL},
        {NC_PERMIT, GN_IP, "127.255.255.254", 1, NULL, NULL},
        {NC_PERMIT, GN_IP, "10.0.0.1", 0, "127.0.0.0/8", "IP:10.0.0.1"},
        {NC_PERMIT, GN_IP, "128.0.0.1", 0, "127.0.0.0/8", "128.0.0.1"},
        {NC_PERMIT, GN_IP, "::1", 0, "127.0.0.0/8", "IP:::1"},
        {NC_PERMIT, GN_URI, "spiffe://cluster.local/x", 1, NULL, NULL},
        {NC_PERMIT, GN_URI, "spiffe://cluster.local/ns/a/sa/b", 1, NULL, NULL},
        {NC_PERMIT, GN_URI, "spiffe://evil.local/x", 0, "cluster.local", "evil.local"},
        {NC_PERMIT, GN_URI, "spiffe://sub.cluster.local/x", 0, "URI:cluster.local", "sub."},
        {NC_PERMIT, GN_URI, "spiffe://cluster.local.evil/x", 0, "cluster.local", "evil"},
        {NC_PERMIT, GN_URI, "spiffe://cluster/x", 0, "cluster.local", "spiffe://cluster/x"},
        {NC_PERMIT, GN_URI, "no-authority", 0, "cluster.local", "no-authority"},
        {NC_DNS_ONLY, GN_DNS, "www.example.com", 1, NULL, NULL},
        {NC_DNS_ONLY, GN_DNS, "example.org", 0, "example.com", "example.org"},
        {NC_DNS_ONLY, GN_IP, "10.0.0.1", 1, NULL, NULL},
        {NC_DNS_ONLY, GN_URI, "spiffe://anything/x", 1, NULL, NULL},
        {NC_EXCLUDE, GN_DNS, "good.example.com", 1, NULL, NULL},
        {NC_EXCLUDE, GN_DNS, "bad.example.com", 0, "excluded", "bad.example.com"},
        {NC_EXCLUDE, GN_DNS, "x.bad.example.com", 0, "excluded", "x.bad.example.com"},
        {NC_EXCLUDE, GN_DNS, "notbad.example.com", 1, NULL, NULL},
        {NC_EXCLUDE, GN_IP, "10.1.2.3", 0, "excluded", "10.0.0.0/8"},
        {NC_EXCLUDE, GN_IP, "192.168.0.1", 1, NULL, NULL},
        {NC_NONE_IP, GN_IP, "127.0.0.1", 0, "excluded", "0.0.0.0/0"},
        {NC_NONE_IP, GN_IP, "::1", 0, "excluded", "::/0"},
        {NC_NONE_IP, GN_DNS, "anything.example", 1, NULL, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        GENERAL_NAME *gn = make_gn(rows[i].kind, rows[i].value, &e);
        if (gn == NULL) {
            TU_ROW_FAIL(bad, "row %zu '%s': cannot build the name: %s", i, rows[i].value,
                        err_msg(&e));
            continue;
        }
        GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
        assert_non_null(sans);
        assert_true(sk_GENERAL_NAME_push(sans, gn) > 0);
        int rc = pqm__nc_precheck(s->nc[rows[i].nc], sans, "test CA", &e);
        GENERAL_NAMES_free(sans);
        if (rows[i].ok) {
            if (rc != 0)
                TU_ROW_FAIL(bad, "row %zu '%s': refused: %s", i, rows[i].value, err_msg(&e));
        } else if (rc != -1) {
            TU_ROW_FAIL(bad, "row %zu '%s': accepted (rc %d)", i, rows[i].value, rc);
        } else if (strstr(e.msg, rows[i].msg1) == NULL || strstr(e.msg, rows[i].msg2) == NULL ||
                   strstr(e.msg, "test CA") == NULL) {
            TU_ROW_FAIL(bad, "row %zu '%s': message '%s' should name '%s', '%s' and the CA", i,
                        rows[i].value, e.msg, rows[i].msg1, rows[i].msg2);
        }
    }
    TU_ROWS_DONE(bad);
}

static void test_nc_precheck_every_name(void **state)
{
    struct nc_state *s = *state;
    struct pqm_err e = {{0}};
    GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
    assert_non_null(sans);
    assert_true(sk_GENERAL_NAME_push(sans, pqm__gn_dns("api.example.com", &e)) > 0);
    assert_true(sk_GENERAL_NAME_push(sans, pqm__gn_ip("127.0.0.1", &e)) > 0);
    assert_true(sk_GENERAL_NAME_push(sans, pqm__gn_dns("www.evil.org", &e)) > 0);
    /* A bad name after good ones is still found, and it is the one named. */
    int rc = pqm__nc_precheck(s->nc[NC_PERMIT], sans, "test CA", &e);
    assert_int_equal(rc, -1);
    tu_assert_contains(e.msg, "www.evil.org");
    /* Without the bad one the list passes. */
    GENERAL_NAME_free(sk_GENERAL_NAME_pop(sans));
    pqm__err_clear(&e);
    assert_int_equal(pqm__nc_precheck(s->nc[NC_PERMIT], sans, "test CA", &e), 0);
    /* No constraints at all: everything passes. */
    assert_true(sk_GENERAL_NAME_push(sans, pqm__gn_dns("www.evil.org", &e)) > 0);
    assert_int_equal(pqm__nc_precheck(NULL, sans, "test CA", &e), 0);
    /* No names: nothing to refuse. */
    GENERAL_NAMES *none = sk_GENERAL_NAME_new_null();
    assert_int_equal(pqm__nc_precheck(s->nc[NC_PERMIT], none, "test CA", &e), 0);
    GENERAL_NAMES_free(none);
    GENERAL_NAMES_free(sans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_valid),
        cmocka_unit_test(test_spiffe_td_valid),
        cmocka_unit_test(test_spiffe_parse),
        cmocka_unit_test(test_spiffe_parse_td_buffer_too_small),
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_gn_build_and_format),
        cmocka_unit_test(test_gn_format_truncates),
        cmocka_unit_test_setup_teardown(test_nc_precheck, nc_setup, nc_teardown),
        cmocka_unit_test_setup_teardown(test_nc_precheck_every_name, nc_setup, nc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
