/* Key groups: rows numbered by a fixed-width key, with per group its first row and the
 * smallest text of its rows.
 *
 * The store keeps one reading row per reading key: the first row in batch order, with the
 * smallest uplink key of all rows of that key. Sorting every candidate row by its key to
 * find the runs costs more than one pass over a hash table of the keys, which the rows
 * then leave grouped in order of first appearance; only the few winners are sorted after.
 * The same pass numbers the distinct entries of text tables (equal bytes, one number).
 * Twin: minolcore._reference.groups.key_groups_into.
 */
#include <stdlib.h>
#include <string.h>

#include "minolcore.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL

/* A slot of the table holds a group's number, or -1; the keys are compared byte for byte,
 * the hash only picks the slot. Eight bytes at a time: the keys are a few words wide. The
 * caller's seed (random per process) keeps keys chosen to share slots, such as dates sent
 * by meters, from being found offline: the groups do not depend on it. */
static uint64_t hash_key(const uint8_t *key, size_t width, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)width * GOLDEN);
    size_t i = 0;
    for (; i + 8 <= width; i += 8) {
        uint64_t word;
        memcpy(&word, key + i, 8);
        h = (h ^ word) * GOLDEN;
        h ^= h >> 29;
    }
    if (i < width) {
        uint64_t word = 0;
        memcpy(&word, key + i, width - i);
        h = (h ^ word) * GOLDEN;
        h ^= h >> 29;
    }
    /* The low bits pick the slot: fold the high ones in (the finaliser of MurmurHash3). */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Whether text a sorts before text b: bytewise, a prefix before the longer text (which is
 * Python's order of str for their UTF-8 bytes). */
static int text_before(const uint8_t *texts, const int64_t *starts, const int64_t *ends, int64_t a, int64_t b)
{
    size_t la = (size_t)(ends[a] - starts[a]), lb = (size_t)(ends[b] - starts[b]);
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(texts + starts[a], texts + starts[b], n) : 0;
    return c < 0 || (c == 0 && la < lb);
}

int64_t mc_key_groups(const uint8_t *keys, size_t keys_len, size_t n_rows, size_t width, const int64_t *order,
                      const int64_t *text_of, const uint8_t *texts, size_t texts_len, const int64_t *text_starts,
                      const int64_t *text_ends, size_t n_texts, int64_t *group_of, int64_t *first,
                      int64_t *smallest, uint64_t seed)
{
    if (n_rows == 0)
        return 0;
    if (width != 0 && n_rows > keys_len / width)
        return MC_GROUPS_RANGE;
    if (text_of != NULL) {
        for (size_t t = 0; t < n_texts; t++)
            if (text_starts[t] < 0 || text_ends[t] < text_starts[t] || (uint64_t)text_ends[t] > texts_len)
                return MC_GROUPS_RANGE;
        for (size_t i = 0; i < n_rows; i++)
            if (text_of[i] < 0 || (uint64_t)text_of[i] >= n_texts)
                return MC_GROUPS_RANGE;
    }
    if (n_rows > SIZE_MAX / 4 / sizeof(int64_t))
        return MC_GROUPS_NOMEM;
    size_t capacity = 16;
    while (capacity < 2 * n_rows)
        capacity <<= 1;
    int64_t *slots = malloc(capacity * sizeof *slots);
    int64_t *heads = malloc(n_rows * sizeof *heads); /* a group's first row in row order */
    if (slots == NULL || heads == NULL) {
        free(slots);
        free(heads);
        return MC_GROUPS_NOMEM;
    }
    for (size_t s = 0; s < capacity; s++)
        slots[s] = -1;
    int64_t groups = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const uint8_t *key = keys + i * width;
        size_t s = (size_t)hash_key(key, width, seed) & (capacity - 1);
        int64_t g;
        for (;; s = (s + 1) & (capacity - 1)) {
            g = slots[s];
            if (g < 0) {
                g = slots[s] = groups++;
                heads[g] = (int64_t)i;
                first[g] = (int64_t)i;
                if (text_of != NULL)
                    smallest[g] = (int64_t)i; /* a row for now: its text entry at the end */
                break;
            }
            if (width == 0 || memcmp(keys + (size_t)heads[g] * width, key, width) == 0)
                break;
        }
        group_of[i] = g;
        if (heads[g] == (int64_t)i)
            continue;
        /* Rows come in row order, so of rows equally early (or with equal texts) the one met
         * first stays. */
        int earlier = order != NULL && order[i] < order[first[g]];
        if (earlier)
            first[g] = (int64_t)i;
        if (text_of != NULL) {
            int64_t best = smallest[g];
            if (text_before(texts, text_starts, text_ends, text_of[i], text_of[best]) ||
                (order != NULL && order[i] < order[best] &&
                 !text_before(texts, text_starts, text_ends, text_of[best], text_of[i])))
                smallest[g] = (int64_t)i;
        }
    }
    if (text_of != NULL)
        for (int64_t g = 0; g < groups; g++)
            smallest[g] = text_of[smallest[g]];
    free(slots);
    free(heads);
    return groups;
}
