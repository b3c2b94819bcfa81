/* Batch frame scan: CRC shape detection and check, CRC strip, link/ELL/AFL/TPL header
 * fields and a keyed fingerprint per frame. Mirrors minolcore.wmbus.frame.strip_crcs,
 * minolcore.wmbus.headers.parse_layers and minolcore._reference.scan line by line. */
#include <string.h>

#include "minolcore.h"

#define LINK_HEADER 10
#define MIN_FRAME 11
#define B_FIRST_BLOCKS 126
#define MAX_INPUT 512

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Copies of 10-250 bytes: compilers turn a variable-length memcpy into "rep movs", whose
 * start-up cost dominated the whole scan; fixed-size pieces compile to plain moves. */
static void copy_small(uint8_t *dst, const uint8_t *src, int n)
{
    while (n >= 8) {
        memcpy(dst, src, 8);
        dst += 8;
        src += 8;
        n -= 8;
    }
    if (n >= 4) {
        memcpy(dst, src, 4);
        dst += 4;
        src += 4;
        n -= 4;
    }
    if (n >= 2) {
        memcpy(dst, src, 2);
        dst += 2;
        src += 2;
        n -= 2;
    }
    if (n)
        *dst = *src;
}

static int a_format_length(int l_field)
{
    int rest = l_field - (LINK_HEADER - 1);
    return l_field + 1 + 2 + 2 * ((rest + 15) / 16);
}

static int b_rewritten_total(int l_field)
{
    int total = l_field + 3;
    return total <= B_FIRST_BLOCKS + 2 ? total : l_field + 5;
}

/* Is the big-endian CRC stored at d[end] the CRC of d[start:end]? */
static int crc_ok(const uint8_t *d, int start, int end)
{
    unsigned stored = ((unsigned)d[end] << 8) | d[end + 1];
    return stored == mc_crc16(d + start, (size_t)(end - start));
}

/* Past its first CRC (after 126 bytes) a format-B frame has a second block of at least one
 * byte and its CRC: 129 and 130 bytes are no format-B length. */
static int b_length_possible(int total)
{
    return total <= B_FIRST_BLOCKS + 2 || total >= B_FIRST_BLOCKS + 5;
}

static int format_b_ok(const uint8_t *d, int total)
{
    if (total < MIN_FRAME + 2 || !b_length_possible(total))
        return 0;
    if (total <= B_FIRST_BLOCKS + 2)
        return crc_ok(d, 0, total - 2);
    return crc_ok(d, 0, B_FIRST_BLOCKS) && crc_ok(d, B_FIRST_BLOCKS + 2, total - 2);
}

static int strip_format_b(const uint8_t *d, int total, uint8_t *out)
{
    if (total <= B_FIRST_BLOCKS + 2) {
        copy_small(out, d, total - 2);
        return total - 2;
    }
    copy_small(out, d, B_FIRST_BLOCKS);
    copy_small(out + B_FIRST_BLOCKS, d + B_FIRST_BLOCKS + 2, total - B_FIRST_BLOCKS - 4);
    return total - 4;
}

/* Returns a status; on MC_OK fills out[0:*out_len] with the canonical frame (L fixed) and
 * the trailing bytes after it. */
static int strip_crcs(const uint8_t *d, int total, int mode, uint8_t *out, int *out_len, int *trailing,
                      int *shape, int *rewritten)
{
    if (total < MIN_FRAME)
        return MC_TOO_SHORT;
    int l_field = d[0];
    if (l_field < MIN_FRAME - 1 || total > MAX_INPUT)
        return MC_L_FIELD;
    *trailing = 0;
    *rewritten = 0;
    if (mode != MC_MODE_ABSENT) {
        if (total >= LINK_HEADER + 2 && crc_ok(d, 0, LINK_HEADER)) {
            int expected = a_format_length(l_field);
            if (total != expected)
                return MC_L_FIELD;
            int start = 0, end = LINK_HEADER, written = 0;
            while (start < total) {
                if (!crc_ok(d, start, end))
                    return MC_CRC;
                copy_small(out + written, d + start, end - start);
                written += end - start;
                start = end + 2;
                end = start + 16 < total - 2 ? start + 16 : total - 2;
            }
            *shape = MC_SHAPE_A;
            *out_len = written;
            out[0] = (uint8_t)(written - 1);
            return MC_OK;
        }
        int b_failed = 0;
        if (total == l_field + 1) {
            if (format_b_ok(d, total)) {
                *out_len = strip_format_b(d, total, out);
                out[0] = (uint8_t)(*out_len - 1);
                *shape = MC_SHAPE_B;
                return MC_OK;
            }
            b_failed = b_length_possible(total);
        } else if (total == b_rewritten_total(l_field) && total - 1 <= 255) {
            /* The meter's CRC covers the original L, which counted the CRC bytes (and fits
             * in the L byte: a longer frame cannot be a rewritten format-B frame). */
            uint8_t original[MAX_INPUT];
            memcpy(original, d, (size_t)total);
            original[0] = (uint8_t)(total - 1);
            if (!format_b_ok(original, total))
                goto not_b;
            *out_len = strip_format_b(original, total, out);
            out[0] = (uint8_t)(*out_len - 1);
            *shape = MC_SHAPE_B;
            *rewritten = 1;
            return MC_OK;
        }
    not_b:
        if (mode == MC_MODE_PRESENT) {
            if (total == a_format_length(l_field) || b_failed)
                return MC_CRC;
            return MC_L_FIELD;
        }
        if (total == a_format_length(l_field))
            return MC_CRC;
    }
    if (total < l_field + 1)
        return MC_L_FIELD;
    copy_small(out, d, total);
    *out_len = l_field + 1;
    *trailing = total - l_field - 1;
    *shape = MC_SHAPE_NONE;
    return MC_OK;
}

/* TPL header kind of a CI: 0 unknown, 1 none, 2 short, 3 long, 4 manufacturer. */
static int tpl_kind(unsigned ci)
{
    switch (ci) {
    case 0x51: case 0x78: case 0x79:
        return 1;
    case 0x5A: case 0x61: case 0x65: case 0x6E: case 0x74: case 0x7A: case 0x7B: case 0x7D: case 0x7F:
    case 0x8A:
        return 2;
    case 0x53: case 0x5B: case 0x60: case 0x64: case 0x6F: case 0x72: case 0x73: case 0x75: case 0x7C:
    case 0x7E: case 0x80: case 0x8B:
        return 3;
    default:
        return (ci >= 0xA0 && ci <= 0xB7) ? 4 : 0;
    }
}

static const int afl_mac_lengths[16] = {-1, -1, -1, 2, 4, 8, 12, 16, -1, -1, -1, -1, -1, -1, -1, -1};

static int parse_layers(const uint8_t *d, int len, int off, mc_frame_info *fi)
{
    if (off >= len)
        return MC_HEADER_TRUNCATED;
    unsigned ci = d[off];
    if (ci >= 0x8C && ci <= 0x8F) {
        static const int ell_lengths[4] = {3, 9, 11, 17};
        if (len - off < ell_lengths[ci - 0x8C])
            return MC_HEADER_TRUNCATED;
        fi->flags |= MC_FLAG_ELL;
        fi->acc = d[off + 2];
        int cur = off + 3;
        if (ci == 0x8E || ci == 0x8F)
            cur += 8;
        if (ci == 0x8D || ci == 0x8F) {
            uint32_t sn = le32(d + cur);
            cur += 4;
            if ((sn >> 29) & 7u) {
                fi->flags |= MC_FLAG_HIDDEN;
                fi->apl_offset = (uint16_t)cur;
                return MC_OK;
            }
            cur += 2;
        }
        off = cur;
        if (off >= len)
            return MC_HEADER_TRUNCATED;
    }
    if (d[off] == 0x90) {
        if (len - off < 4)
            return MC_HEADER_TRUNCATED;
        int afll = d[off + 1];
        int end = off + 2 + afll;
        if (len - off < 2 + afll || afll < 2)
            return MC_HEADER_TRUNCATED;
        unsigned fcl = le16(d + off + 2);
        int cur = off + 4;
        unsigned mcl = 0;
        if (fcl & 0x2000u) {
            if (cur + 1 > end)
                return MC_HEADER_TRUNCATED;
            mcl = d[cur];
            cur += 1;
        }
        if (fcl & 0x0200u) {
            if (cur + 2 > end)
                return MC_HEADER_TRUNCATED;
            cur += 2;
        }
        if (fcl & 0x0800u) {
            if (cur + 4 > end)
                return MC_HEADER_TRUNCATED;
            fi->message_counter = le32(d + cur);
            fi->flags |= MC_FLAG_MCR;
            cur += 4;
        }
        if (fcl & 0x0400u) {
            int ml_size = (fcl & 0x1000u) ? 2 : 0;
            int mac_length = afl_mac_lengths[mcl & 0x0Fu];
            if (mac_length < 0)
                mac_length = end - cur - ml_size;
            if (mac_length < 0 || cur + mac_length > end)
                return MC_HEADER_TRUNCATED;
            cur += mac_length;
        }
        if (fcl & 0x1000u) {
            if (cur + 2 > end)
                return MC_HEADER_TRUNCATED;
        }
        fi->flags |= MC_FLAG_AFL;
        off = end;
        if (off >= len)
            return MC_HEADER_TRUNCATED;
    }
    ci = d[off];
    fi->tpl_ci = (uint8_t)ci;
    int kind = tpl_kind(ci);
    if (kind == 2 || kind == 3) {
        int cur = off + 1;
        if (kind == 3) {
            if (len - off < 13)
                return MC_HEADER_TRUNCATED;
            fi->meter_id = le32(d + cur);
            fi->meter_manufacturer = le16(d + cur + 4);
            fi->meter_version = d[cur + 6];
            fi->meter_device_type = d[cur + 7];
            fi->flags |= MC_FLAG_LONG_TPL;
            cur += 8;
        } else if (len - off < 5) {
            return MC_HEADER_TRUNCATED;
        }
        unsigned cf = le16(d + cur + 2);
        unsigned mode = (cf >> 8) & 0x1Fu;
        if (mode == 7 && cur + 4 >= len)
            return MC_HEADER_TRUNCATED;
        fi->acc = d[cur];
        fi->security_mode = (uint8_t)mode;
        fi->encrypted_blocks = (uint8_t)((cf >> 4) & 0x0Fu);
        fi->flags |= MC_FLAG_TPL;
        fi->apl_offset = (uint16_t)(cur + 4 + (mode == 7 ? 1 : 0));
    } else {
        fi->apl_offset = (uint16_t)(off + 1);
    }
    return MC_OK;
}

static void scan_one(const uint8_t *d, int total, int mode, const uint8_t *key, uint8_t *out,
                     mc_frame_info *fi)
{
    int out_len = 0, trailing = 0, shape = 0, rewritten = 0;
    int status = strip_crcs(d, total, mode, out, &out_len, &trailing, &shape, &rewritten);
    fi->status = (uint8_t)status;
    if (status != MC_OK)
        return;
    fi->crc_shape = (uint8_t)shape;
    fi->out_length = (uint16_t)out_len;
    fi->trailing = (uint16_t)trailing;
    if (rewritten)
        fi->flags |= MC_FLAG_L_REWRITTEN;
    fi->c_field = out[1];
    fi->manufacturer = le16(out + 2);
    fi->id = le32(out + 4);
    fi->version = out[8];
    fi->device_type = out[9];
    fi->ci = out[10];
    fi->meter_manufacturer = fi->manufacturer;
    fi->meter_id = fi->id;
    fi->meter_version = fi->version;
    fi->meter_device_type = fi->device_type;
    fi->fingerprint = mc_siphash24(key, out, (size_t)out_len);
    fi->status = (uint8_t)parse_layers(out, out_len, LINK_HEADER, fi);
    if (fi->status != MC_OK) {
        /* A truncated header leaves only what the link layer said. */
        fi->flags &= MC_FLAG_L_REWRITTEN;
        fi->acc = fi->tpl_ci = fi->security_mode = fi->encrypted_blocks = 0;
        fi->apl_offset = 0;
        fi->message_counter = 0;
        fi->meter_manufacturer = fi->manufacturer;
        fi->meter_id = fi->id;
        fi->meter_version = fi->version;
        fi->meter_device_type = fi->device_type;
    }
}

void mc_scan(const uint8_t *buf, const int64_t *offsets, const int32_t *lengths, size_t n, int mode,
             const uint8_t *modes, const uint8_t *key, uint8_t *out, mc_frame_info *info)
{
    int64_t cursor = 0; /* each frame gets as many output bytes as it has input bytes */
    for (size_t i = 0; i < n; i++) {
        mc_frame_info *fi = &info[i];
        memset(fi, 0, sizeof *fi);
        fi->out_offset = cursor;
        scan_one(buf + offsets[i], lengths[i], modes ? modes[i] : mode, key, out + cursor, fi);
        cursor += lengths[i];
    }
}
