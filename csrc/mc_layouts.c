/* Layout groups: telegrams numbered by the header bytes of their records.
 *
 * A meter type sends the same record headers (DIB + VIB) in every telegram; the layout
 * plans read a whole group of telegrams with one layout at once. A telegram's layout key is
 * its records' header bytes, one record after the other, and two telegrams share a layout
 * when their keys are the same bytes. Twin: minolcore._reference.layouts.layout_groups_into.
 */
#include <stdlib.h>
#include <string.h>

#include "minolcore.h"

/* 64-bit FNV-1a: the keys are a few dozen bytes and only pick a slot; equal keys are then
 * compared byte for byte. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

typedef struct {
    const uint8_t *buffer;
    const mc_record *rows;
    int64_t base;  /* where the telegram's application layer starts in buffer */
    int64_t first; /* its first row */
    int64_t count; /* its rows */
} telegram_key;

/* A header's start and end are its telegram's base plus 32-bit offsets: with the base
 * further than this from the buffer, no span lies within it (and the sums could overflow). */
#define BASE_SLACK ((int64_t)1 << 32)

/* 1 when every header of the telegram lies within the buffer, with its sum of lengths and hash. */
static int key_of(telegram_key k, size_t buffer_len, int64_t *length, uint64_t *hash)
{
    uint64_t h = FNV_OFFSET;
    int64_t total = 0;
    if (k.count > 0 && (k.base < -BASE_SLACK || k.base > (int64_t)buffer_len + BASE_SLACK))
        return 0;
    for (int64_t r = k.first; r < k.first + k.count; r++) {
        int64_t start = k.base + k.rows[r].offset;
        int64_t end = k.base + k.rows[r].data_offset;
        if (start < 0 || end < start || (uint64_t)end > buffer_len)
            return 0;
        for (int64_t p = start; p < end; p++) {
            h ^= k.buffer[p];
            h *= FNV_PRIME;
        }
        total += end - start;
    }
    *length = total;
    *hash = h;
    return 1;
}

/* Whether two keys of equal length (both checked by key_of) are the same bytes: the header
 * spans are walked side by side, since a key is split into records differently in each. */
static int same_key(telegram_key a, telegram_key b)
{
    int64_t ra = a.first, rb = b.first;
    int64_t pa = 0, pb = 0, ea = 0, eb = 0; /* positions and span ends in buffer */
    for (;;) {
        while (pa == ea && ra < a.first + a.count) {
            pa = a.base + a.rows[ra].offset;
            ea = a.base + a.rows[ra].data_offset;
            ra++;
        }
        while (pb == eb && rb < b.first + b.count) {
            pb = b.base + b.rows[rb].offset;
            eb = b.base + b.rows[rb].data_offset;
            rb++;
        }
        if (pa == ea || pb == eb)
            return pa == ea && pb == eb; /* equal lengths: both end together */
        int64_t n = ea - pa < eb - pb ? ea - pa : eb - pb;
        if (memcmp(a.buffer + pa, b.buffer + pb, (size_t)n) != 0)
            return 0;
        pa += n;
        pb += n;
    }
}

int64_t mc_layout_groups(const uint8_t *buffer, size_t buffer_len, const int64_t *apl_offsets,
                         size_t n_telegrams, const mc_record *rows, size_t n_rows, const int64_t *firsts,
                         const int32_t *counts, const int64_t *chosen, size_t n_chosen, int64_t *group_of,
                         int64_t *heads)
{
    if (n_chosen == 0)
        return 0;
    size_t capacity = 16;
    while (capacity < 2 * n_chosen)
        capacity <<= 1;
    int64_t *lengths = malloc(n_chosen * sizeof *lengths);
    uint64_t *hashes = malloc(n_chosen * sizeof *hashes);
    int64_t *slots = malloc(capacity * sizeof *slots); /* a group's number, or -1 */
    if (lengths == NULL || hashes == NULL || slots == NULL) {
        free(lengths);
        free(hashes);
        free(slots);
        return MC_LAYOUT_NOMEM;
    }
    for (size_t s = 0; s < capacity; s++)
        slots[s] = -1;
    int64_t groups = 0;
    for (size_t i = 0; i < n_chosen; i++) {
        int64_t t = chosen[i];
        if (t < 0 || (uint64_t)t >= n_telegrams) {
            groups = MC_LAYOUT_RANGE;
            break;
        }
        telegram_key key = {buffer, rows, apl_offsets[t], firsts[t], counts[t]};
        if (key.first < 0 || key.count < 0 || (uint64_t)key.first > n_rows ||
            (uint64_t)key.count > n_rows - (uint64_t)key.first ||
            !key_of(key, buffer_len, &lengths[i], &hashes[i])) {
            groups = MC_LAYOUT_RANGE;
            break;
        }
        size_t s = (size_t)hashes[i] & (capacity - 1);
        for (;; s = (s + 1) & (capacity - 1)) {
            int64_t g = slots[s];
            if (g < 0) {
                slots[s] = groups;
                heads[groups] = (int64_t)i;
                group_of[i] = groups++;
                break;
            }
            size_t h = (size_t)heads[g];
            int64_t u = chosen[h];
            telegram_key other = {buffer, rows, apl_offsets[u], firsts[u], counts[u]};
            if (hashes[h] == hashes[i] && lengths[h] == lengths[i] && same_key(key, other)) {
                group_of[i] = g;
                break;
            }
        }
    }
    free(lengths);
    free(hashes);
    free(slots);
    return groups;
}
