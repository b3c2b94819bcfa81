/* SipHash-2-4, written from the paper (Aumasson, Bernstein 2012). */
#include "minolcore.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                        \
    do {                                                                                                \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                       \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                          \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                          \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                       \
    } while (0)

static uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) |
           ((uint64_t)p[7] << 56);
}

uint64_t mc_siphash24(const uint8_t *key, const uint8_t *data, size_t len)
{
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    const uint8_t *end = data + (len - (len % 8));
    for (; data != end; data += 8) {
        uint64_t m = load_le64(data);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = ((uint64_t)len) << 56;
    switch (len & 7) {
    case 7: last |= (uint64_t)data[6] << 48; /* fall through */
    case 6: last |= (uint64_t)data[5] << 40; /* fall through */
    case 5: last |= (uint64_t)data[4] << 32; /* fall through */
    case 4: last |= (uint64_t)data[3] << 24; /* fall through */
    case 3: last |= (uint64_t)data[2] << 16; /* fall through */
    case 2: last |= (uint64_t)data[1] << 8;  /* fall through */
    case 1: last |= (uint64_t)data[0]; break;
    default: break;
    }
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
