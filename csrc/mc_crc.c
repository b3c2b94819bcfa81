/* CRC-16/EN-13757: poly 0x3D65, init 0, MSB first, xorout 0xFFFF.
 * Slicing-by-8: eight table lookups per eight bytes instead of eight dependent steps. */
#include "minolcore.h"

static uint16_t crc_tables[8][256];
static int crc_tables_ready = 0;

static void crc_init(void)
{
    for (unsigned byte = 0; byte < 256; byte++) {
        uint16_t crc = (uint16_t)(byte << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)((crc & 0x8000u) ? ((unsigned)crc << 1) ^ 0x3D65u : ((unsigned)crc << 1));
        crc_tables[0][byte] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (unsigned byte = 0; byte < 256; byte++) {
            uint16_t prev = crc_tables[k - 1][byte];
            crc_tables[k][byte] = (uint16_t)(((unsigned)prev << 8) ^ crc_tables[0][prev >> 8]);
        }
    crc_tables_ready = 1;
}

uint16_t mc_crc16(const uint8_t *data, size_t len)
{
    if (!crc_tables_ready)
        crc_init();
    unsigned crc = 0;
    while (len >= 8) {
        crc = crc_tables[7][(crc >> 8) ^ data[0]] ^ crc_tables[6][(crc & 0xFFu) ^ data[1]] ^
              crc_tables[5][data[2]] ^ crc_tables[4][data[3]] ^ crc_tables[3][data[4]] ^
              crc_tables[2][data[5]] ^ crc_tables[1][data[6]] ^ crc_tables[0][data[7]];
        data += 8;
        len -= 8;
    }
    while (len--) {
        crc = ((crc << 8) & 0xFFFFu) ^ crc_tables[0][(crc >> 8) ^ *data++];
    }
    return (uint16_t)(crc ^ 0xFFFFu);
}
