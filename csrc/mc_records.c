/* Batch walker of EN 13757-3 data records: the structure of each record (DIB, VIB, data
 * field) and its unscaled number, one row per record. The meaning of a VIB (quantity,
 * unit, exponent) stays in the Python tables of minolcore.wmbus.vif; this walker only
 * follows the extension bits. Whatever needs more than that (LVAR data, a plain-text VIF)
 * or is malformed is handed back to the Python walker, which then walks the whole
 * application layer and produces its exact records and error text.
 * Mirrors minolcore._reference.records line by line. */
#include <string.h>

#include "minolcore.h"

#define MAX_EXT 10 /* DIFEs per DIB and VIFEs per VIB, as minolcore.wmbus.records/vif allow */

enum { CODING_NONE = 0, CODING_INT = 1, CODING_REAL = 2, CODING_BCD = 3, CODING_LVAR = 4, CODING_SPECIAL = 5 };

static const uint8_t data_coding[16] = {CODING_NONE, CODING_INT,  CODING_INT, CODING_INT,
                                        CODING_INT,  CODING_REAL, CODING_INT, CODING_INT,
                                        CODING_NONE, CODING_BCD,  CODING_BCD, CODING_BCD,
                                        CODING_BCD,  CODING_LVAR, CODING_BCD, CODING_SPECIAL};
static const uint8_t data_length[16] = {0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, 0, 6, 0};

/* CRC-16/EN-13757 (poly 0x3D65, MSB first) of each byte value, the register starting at 0:
 * one lookup per byte of the record headers instead of eight register steps. */
static const uint16_t CRC_OF_BYTE[256] = {
    0x0000, 0x3D65, 0x7ACA, 0x47AF, 0xF594, 0xC8F1, 0x8F5E, 0xB23B,
    0xD64D, 0xEB28, 0xAC87, 0x91E2, 0x23D9, 0x1EBC, 0x5913, 0x6476,
    0x91FF, 0xAC9A, 0xEB35, 0xD650, 0x646B, 0x590E, 0x1EA1, 0x23C4,
    0x47B2, 0x7AD7, 0x3D78, 0x001D, 0xB226, 0x8F43, 0xC8EC, 0xF589,
    0x1E9B, 0x23FE, 0x6451, 0x5934, 0xEB0F, 0xD66A, 0x91C5, 0xACA0,
    0xC8D6, 0xF5B3, 0xB21C, 0x8F79, 0x3D42, 0x0027, 0x4788, 0x7AED,
    0x8F64, 0xB201, 0xF5AE, 0xC8CB, 0x7AF0, 0x4795, 0x003A, 0x3D5F,
    0x5929, 0x644C, 0x23E3, 0x1E86, 0xACBD, 0x91D8, 0xD677, 0xEB12,
    0x3D36, 0x0053, 0x47FC, 0x7A99, 0xC8A2, 0xF5C7, 0xB268, 0x8F0D,
    0xEB7B, 0xD61E, 0x91B1, 0xACD4, 0x1EEF, 0x238A, 0x6425, 0x5940,
    0xACC9, 0x91AC, 0xD603, 0xEB66, 0x595D, 0x6438, 0x2397, 0x1EF2,
    0x7A84, 0x47E1, 0x004E, 0x3D2B, 0x8F10, 0xB275, 0xF5DA, 0xC8BF,
    0x23AD, 0x1EC8, 0x5967, 0x6402, 0xD639, 0xEB5C, 0xACF3, 0x9196,
    0xF5E0, 0xC885, 0x8F2A, 0xB24F, 0x0074, 0x3D11, 0x7ABE, 0x47DB,
    0xB252, 0x8F37, 0xC898, 0xF5FD, 0x47C6, 0x7AA3, 0x3D0C, 0x0069,
    0x641F, 0x597A, 0x1ED5, 0x23B0, 0x918B, 0xACEE, 0xEB41, 0xD624,
    0x7A6C, 0x4709, 0x00A6, 0x3DC3, 0x8FF8, 0xB29D, 0xF532, 0xC857,
    0xAC21, 0x9144, 0xD6EB, 0xEB8E, 0x59B5, 0x64D0, 0x237F, 0x1E1A,
    0xEB93, 0xD6F6, 0x9159, 0xAC3C, 0x1E07, 0x2362, 0x64CD, 0x59A8,
    0x3DDE, 0x00BB, 0x4714, 0x7A71, 0xC84A, 0xF52F, 0xB280, 0x8FE5,
    0x64F7, 0x5992, 0x1E3D, 0x2358, 0x9163, 0xAC06, 0xEBA9, 0xD6CC,
    0xB2BA, 0x8FDF, 0xC870, 0xF515, 0x472E, 0x7A4B, 0x3DE4, 0x0081,
    0xF508, 0xC86D, 0x8FC2, 0xB2A7, 0x009C, 0x3DF9, 0x7A56, 0x4733,
    0x2345, 0x1E20, 0x598F, 0x64EA, 0xD6D1, 0xEBB4, 0xAC1B, 0x917E,
    0x475A, 0x7A3F, 0x3D90, 0x00F5, 0xB2CE, 0x8FAB, 0xC804, 0xF561,
    0x9117, 0xAC72, 0xEBDD, 0xD6B8, 0x6483, 0x59E6, 0x1E49, 0x232C,
    0xD6A5, 0xEBC0, 0xAC6F, 0x910A, 0x2331, 0x1E54, 0x59FB, 0x649E,
    0x00E8, 0x3D8D, 0x7A22, 0x4747, 0xF57C, 0xC819, 0x8FB6, 0xB2D3,
    0x59C1, 0x64A4, 0x230B, 0x1E6E, 0xAC55, 0x9130, 0xD69F, 0xEBFA,
    0x8F8C, 0xB2E9, 0xF546, 0xC823, 0x7A18, 0x477D, 0x00D2, 0x3DB7,
    0xC83E, 0xF55B, 0xB2F4, 0x8F91, 0x3DAA, 0x00CF, 0x4760, 0x7A05,
    0x1E73, 0x2316, 0x64B9, 0x59DC, 0xEBE7, 0xD682, 0x912D, 0xAC48,
};

/* The CRC-16/EN-13757 register after the n bytes at p. */
static unsigned crc_update(unsigned crc, const uint8_t *p, int n)
{
    for (int i = 0; i < n; i++)
        crc = ((crc << 8) & 0xFFFFu) ^ CRC_OF_BYTE[(crc >> 8) ^ p[i]];
    return crc;
}

/* Two's complement of an unsigned 64-bit pattern without an out-of-range conversion. */
static int64_t as_signed(uint64_t u)
{
    if (u >> 63)
        return -(int64_t)(~u) - 1;
    return (int64_t)u;
}

/* Fills value/real and sets MC_REC_NUMBER unless the field is "not set" (see read_number). */
static void read_value(const uint8_t *p, int size, int coding, mc_record *r)
{
    if (coding == CODING_INT) {
        uint64_t u = 0;
        int ones = 1;
        for (int i = size - 1; i >= 0; i--) {
            u = (u << 8) | p[i];
            ones &= p[i] == 0xFF;
        }
        if (ones)
            return;
        if (size < 8 && (p[size - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * size);
        r->value = as_signed(u);
    } else if (coding == CODING_BCD) {
        int64_t v = 0;
        int negative = 0;
        for (int i = size - 1; i >= 0; i--) {
            int hi = p[i] >> 4, lo = p[i] & 0x0F;
            if (i == size - 1 && hi == 0x0F)
                negative = 1;
            else if (hi > 9)
                return;
            if (lo > 9)
                return;
            v = v * 100 + (negative && i == size - 1 ? 0 : hi * 10) + lo;
        }
        r->value = negative ? -v : v;
    } else if (coding == CODING_REAL) {
        uint32_t bits = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
        float f;
        memcpy(&f, &bits, sizeof f);
        if ((bits & 0x7F800000u) == 0x7F800000u)
            return; /* exponent all ones: NaN or an infinity, no reading */
        r->real = (double)f;
        r->flags |= MC_REC_NUMBER;
        return;
    } else {
        return;
    }
    r->real = (double)r->value;
    r->flags |= MC_REC_NUMBER;
}

/* Walks one application layer; returns the status and sets *stop, *count and *crc. */
static int walk_one(const uint8_t *d, int end, int32_t telegram, mc_record *rows, size_t room, int32_t *stop,
                    int32_t *count, unsigned *crc)
{
    int pos = 0;
    size_t used = 0;
    while (pos < end) {
        int dif = d[pos];
        if (dif == 0x2F) {
            pos++;
            continue;
        }
        int rec = pos;
        *stop = rec;
        if ((dif & 0x0F) == 0x0F && dif != 0x0F && dif != 0x1F && dif != 0x7F && dif != 0xFF)
            return MC_WALK_MALFORMED; /* reserved special DIF */
        if (used == room)
            return MC_WALK_NO_ROOM;
        mc_record *r = &rows[used];
        memset(r, 0, sizeof *r);
        r->telegram = telegram;
        r->offset = rec;
        r->dib[0] = (uint8_t)dif;
        r->dib_length = 1;
        if ((dif & 0x0F) == 0x0F) {
            r->coding = CODING_SPECIAL;
            r->data_offset = pos + 1;
            *crc = crc_update(*crc, d + pos, 1);
            if (dif == 0x0F || dif == 0x1F) {
                /* Manufacturer data: the rest of the application layer. */
                r->flags = (uint8_t)(MC_REC_MANUFACTURER_DATA | (dif == 0x1F ? MC_REC_MORE_FOLLOWS : 0));
                r->data_length = end - pos - 1;
                used++;
                *count = (int32_t)used;
                *stop = end;
                return MC_WALK_OK;
            }
            r->flags = MC_REC_GLOBAL_READOUT;
            used++;
            *count = (int32_t)used;
            pos++;
            continue;
        }
        pos++;
        uint64_t storage = (uint64_t)((dif >> 6) & 1);
        uint32_t tariff = 0;
        unsigned subunit = 0;
        int more = dif & 0x80, n = 0;
        while (more) {
            if (pos >= end || n == MAX_EXT)
                return MC_WALK_MALFORMED;
            int dife = d[pos++];
            storage |= (uint64_t)(dife & 0x0F) << (1 + 4 * n);
            tariff |= (uint32_t)((dife >> 4) & 0x03) << (2 * n);
            subunit |= (unsigned)((dife >> 6) & 0x01) << n;
            r->dib[1 + n] = (uint8_t)dife;
            n++;
            more = dife & 0x80;
        }
        r->dib_length = (uint8_t)(1 + n);
        if (pos >= end)
            return MC_WALK_MALFORMED; /* VIF missing */
        int vif = d[pos];
        if ((vif & 0x7F) == 0x7C)
            return MC_WALK_HANDOVER; /* plain-text unit after the VIFEs */
        r->vib[0] = (uint8_t)vif;
        pos++;
        more = vif & 0x80;
        n = 0;
        while (more) {
            if (pos >= end || n == MAX_EXT)
                return MC_WALK_MALFORMED;
            int vife = d[pos++];
            r->vib[1 + n] = (uint8_t)vife;
            n++;
            more = vife & 0x80;
        }
        r->vib_length = (uint8_t)(1 + n);
        int coding = data_coding[dif & 0x0F];
        if (coding == CODING_LVAR)
            return MC_WALK_HANDOVER;
        int size = data_length[dif & 0x0F];
        if (size > end - pos)
            return MC_WALK_MALFORMED;
        r->storage = storage;
        r->tariff = tariff;
        r->subunit = (uint16_t)subunit;
        r->function = (uint8_t)((dif >> 4) & 0x03);
        r->coding = (uint8_t)coding;
        r->data_offset = pos;
        r->data_length = size;
        read_value(d + pos, size, coding, r);
        pos += size;
        *crc = crc_update(*crc, r->dib, r->dib_length);
        *crc = crc_update(*crc, r->vib, r->vib_length);
        used++;
        *count = (int32_t)used;
    }
    *stop = end;
    return MC_WALK_OK;
}

size_t mc_walk_records(const uint8_t *buf, const int64_t *offsets, const int32_t *lengths, size_t n,
                       mc_record *rows, size_t max_rows, mc_walk_info *info)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        mc_walk_info *wi = &info[i];
        memset(wi, 0, sizeof *wi);
        wi->first_record = (int64_t)used;
        if (lengths[i] < 0) {
            wi->status = MC_WALK_MALFORMED;
            continue;
        }
        int32_t stop = 0, count = 0;
        unsigned crc = 0;
        int status = MC_WALK_OK;
        if (lengths[i] > 0) {
            /* No pointer arithmetic on an empty (possibly NULL) buffer or row array. */
            mc_record *room = used < max_rows ? rows + used : NULL;
            status = walk_one(buf + offsets[i], lengths[i], (int32_t)i, room, max_rows - used, &stop, &count,
                              &crc);
        }
        wi->status = (uint8_t)status;
        wi->stop_offset = stop;
        wi->record_count = count;
        wi->signature = (uint16_t)(crc ^ 0xFFFFu);
        used += (size_t)count;
    }
    return used;
}
