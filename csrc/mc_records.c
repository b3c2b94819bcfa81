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

/* CRC-16/EN-13757 register step; the record headers are a few bytes each, so no table. */
static unsigned crc_update(unsigned crc, const uint8_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x3D65u) & 0xFFFFu : (crc << 1) & 0xFFFFu;
    }
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
