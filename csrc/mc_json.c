/* The stored text of an uplink's receptions: one JSON array per uplink, put together from
 * pieces the caller encoded once per distinct value (gateway ids, RSSI and SNR texts). */
#include "minolcore.h"

#include <string.h>

static size_t put_piece(uint8_t *out, const uint8_t *pieces, const int64_t *piece_offsets, int32_t piece)
{
    size_t length = (size_t)(piece_offsets[piece + 1] - piece_offsets[piece]);
    memcpy(out, pieces + piece_offsets[piece], length);
    return length;
}

static size_t put_int64(uint8_t *out, int64_t value)
{
    uint8_t digits[20];
    size_t count = 0, written = 0;
    /* Unsigned magnitude: INT64_MIN has no positive counterpart. */
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    if (value < 0)
        out[written++] = '-';
    do {
        digits[count++] = (uint8_t)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    while (count)
        out[written++] = digits[--count];
    return written;
}

int64_t mc_join_receptions(const int64_t *group_starts, size_t n_groups, size_t n_copies,
                           const int32_t *gateway_piece,
                           const int64_t *received_ms, const int32_t *rssi_piece, const int32_t *snr_piece,
                           const uint8_t *pieces, const int64_t *piece_offsets, size_t n_pieces,
                           uint8_t *out, size_t out_capacity, int64_t *out_offsets)
{
    size_t at = 0;
    out_offsets[0] = 0;
    for (size_t group = 0; group < n_groups; group++) {
        int64_t first = group_starts[group], end = group_starts[group + 1];
        if (first < 0 || end < first || (uint64_t)end > n_copies)
            return -1;
        if (at + 2 > out_capacity)
            return -1;
        out[at++] = '[';
        for (int64_t copy = first; copy < end; copy++) {
            int32_t gateway = gateway_piece[copy], rssi = rssi_piece[copy], snr = snr_piece[copy];
            if (gateway < 0 || rssi < 0 || snr < 0 || (size_t)gateway >= n_pieces || (size_t)rssi >= n_pieces ||
                (size_t)snr >= n_pieces)
                return -1;
            size_t need = 1 + 5 + 20 + (size_t)(piece_offsets[gateway + 1] - piece_offsets[gateway]) +
                          (size_t)(piece_offsets[rssi + 1] - piece_offsets[rssi]) +
                          (size_t)(piece_offsets[snr + 1] - piece_offsets[snr]);
            if (at + need + 1 > out_capacity)
                return -1;
            if (copy != first)
                out[at++] = ',';
            out[at++] = '[';
            at += put_piece(out + at, pieces, piece_offsets, gateway);
            out[at++] = ',';
            at += put_int64(out + at, received_ms[copy]);
            out[at++] = ',';
            at += put_piece(out + at, pieces, piece_offsets, rssi);
            out[at++] = ',';
            at += put_piece(out + at, pieces, piece_offsets, snr);
            out[at++] = ']';
        }
        out[at++] = ']';
        out_offsets[group + 1] = (int64_t)at;
    }
    return (int64_t)at;
}
