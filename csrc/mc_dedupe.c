/* The dedupe table: open addressing (linear probing) over keyed 64-bit fingerprints, with
 * event-time expiry and bounded growth. Mirrors minolcore._reference.dedupe decision by
 * decision; the equivalence tests compare ids, flags and counters. */
#include <stdlib.h>

#include "minolcore.h"

typedef struct {
    uint64_t fingerprint; /* 0 = empty slot */
    int64_t first_seen_ms;
    int64_t uplink_id;
} slot_t;

struct mc_dedupe {
    slot_t *slots;
    uint64_t capacity; /* power of two */
    uint64_t max_capacity;
    uint64_t count;
    int64_t retention_ms;
    int64_t next_id;
    int64_t watermark;
    int64_t last_sweep_watermark;
    uint64_t overflow;
    uint64_t expired;
    uint64_t sweeps;
};

static uint64_t round_up_pow2(uint64_t value)
{
    uint64_t result = 8;
    while (result < value)
        result <<= 1;
    return result;
}

mc_dedupe *mc_dedupe_new(uint64_t initial_capacity, uint64_t max_capacity, int64_t retention_ms)
{
    mc_dedupe *table = calloc(1, sizeof *table);
    if (!table)
        return NULL;
    table->capacity = round_up_pow2(initial_capacity);
    table->max_capacity = round_up_pow2(max_capacity < initial_capacity ? initial_capacity : max_capacity);
    table->slots = calloc(table->capacity, sizeof(slot_t));
    if (!table->slots) {
        free(table);
        return NULL;
    }
    table->retention_ms = retention_ms;
    table->watermark = INT64_MIN;
    table->last_sweep_watermark = INT64_MIN;
    return table;
}

void mc_dedupe_free(mc_dedupe *table)
{
    if (table) {
        free(table->slots);
        free(table);
    }
}

/* The slot holding fingerprint, or the empty slot where it would go. */
static slot_t *find_slot(slot_t *slots, uint64_t mask, uint64_t fingerprint)
{
    uint64_t index = fingerprint & mask;
    for (;;) {
        slot_t *slot = &slots[index];
        if (slot->fingerprint == fingerprint || slot->fingerprint == 0)
            return slot;
        index = (index + 1) & mask;
    }
}

static int sweep_due(const mc_dedupe *t)
{
    if (t->last_sweep_watermark == INT64_MIN)
        return 1;
    int64_t step = t->retention_ms / 8 > 1 ? t->retention_ms / 8 : 1;
    /* Compare without overflow: both are real event times once a sweep has happened. */
    return t->watermark - t->last_sweep_watermark >= step;
}

static int rebuild(mc_dedupe *t, uint64_t capacity)
{
    slot_t *fresh = calloc(capacity, sizeof(slot_t));
    if (!fresh)
        return -1;
    int have_cutoff = t->watermark != INT64_MIN && t->watermark >= INT64_MIN + t->retention_ms;
    int64_t cutoff = have_cutoff ? t->watermark - t->retention_ms : INT64_MIN;
    uint64_t kept = 0;
    for (uint64_t i = 0; i < t->capacity; i++) {
        slot_t *old = &t->slots[i];
        if (old->fingerprint == 0)
            continue;
        if (old->first_seen_ms < cutoff) {
            t->expired++;
            continue;
        }
        *find_slot(fresh, capacity - 1, old->fingerprint) = *old;
        kept++;
    }
    free(t->slots);
    t->slots = fresh;
    t->capacity = capacity;
    t->count = kept;
    t->sweeps++;
    t->last_sweep_watermark = t->watermark;
    return 0;
}

/* 1 when one more entry fits, 0 when the table is full at its maximum, -1 on no memory. */
static int make_room(mc_dedupe *t)
{
    if ((t->count + 1) * 2 <= t->capacity)
        return 1;
    if (sweep_due(t) && rebuild(t, t->capacity) != 0)
        return -1;
    if ((t->count + 1) * 4 > t->capacity && t->capacity * 2 <= t->max_capacity &&
        rebuild(t, t->capacity * 2) != 0)
        return -1;
    return (t->count + 1) * 2 <= t->capacity;
}

int mc_dedupe_batch(mc_dedupe *t, const uint64_t *fingerprints, const int64_t *times_ms, size_t n,
                    int64_t window_ms, int64_t *uplink_ids, uint8_t *is_new)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t fingerprint = fingerprints[i] ? fingerprints[i] : 1;
        int64_t time_ms = times_ms[i];
        slot_t *slot = find_slot(t->slots, t->capacity - 1, fingerprint);
        if (slot->fingerprint != 0) {
            /* |time - first_seen| <= window, computed without signed overflow */
            uint64_t distance = time_ms >= slot->first_seen_ms
                                    ? (uint64_t)time_ms - (uint64_t)slot->first_seen_ms
                                    : (uint64_t)slot->first_seen_ms - (uint64_t)time_ms;
            if (window_ms >= 0 && distance <= (uint64_t)window_ms) {
                uplink_ids[i] = slot->uplink_id;
                is_new[i] = 0;
            } else {
                slot->first_seen_ms = time_ms;
                slot->uplink_id = t->next_id++;
                uplink_ids[i] = slot->uplink_id;
                is_new[i] = 1;
            }
        } else {
            int64_t uplink = t->next_id++;
            int room = make_room(t);
            if (room < 0)
                return -1;
            if (room) {
                slot = find_slot(t->slots, t->capacity - 1, fingerprint);
                slot->fingerprint = fingerprint;
                slot->first_seen_ms = time_ms;
                slot->uplink_id = uplink;
                t->count++;
            } else {
                t->overflow++;
            }
            uplink_ids[i] = uplink;
            is_new[i] = 1;
        }
        if (time_ms > t->watermark)
            t->watermark = time_ms;
    }
    return 0;
}

void mc_dedupe_get_stats(const mc_dedupe *t, mc_dedupe_stats *out)
{
    out->count = t->count;
    out->capacity = t->capacity;
    out->max_capacity = t->max_capacity;
    out->next_id = t->next_id;
    out->watermark = t->watermark;
    out->last_sweep_watermark = t->last_sweep_watermark;
    out->overflow = t->overflow;
    out->expired = t->expired;
    out->sweeps = t->sweeps;
    out->retention_ms = t->retention_ms;
}

size_t mc_dedupe_export(const mc_dedupe *t, uint64_t *fingerprints, int64_t *first_seen_ms, int64_t *uplink_ids,
                        size_t max_entries)
{
    size_t written = 0;
    for (uint64_t i = 0; i < t->capacity && written < max_entries; i++) {
        const slot_t *slot = &t->slots[i];
        if (slot->fingerprint == 0)
            continue;
        fingerprints[written] = slot->fingerprint;
        first_seen_ms[written] = slot->first_seen_ms;
        uplink_ids[written] = slot->uplink_id;
        written++;
    }
    return written;
}

int mc_dedupe_restore(mc_dedupe *t, const uint64_t *fingerprints, const int64_t *first_seen_ms,
                      const int64_t *uplink_ids, size_t n, const mc_dedupe_stats *state)
{
    uint64_t needed = round_up_pow2(state->capacity);
    /* A table may be exactly half full: keep its capacity then, as the live table had it. */
    while (needed < n * 2)
        needed <<= 1;
    slot_t *fresh = calloc(needed, sizeof(slot_t));
    if (!fresh)
        return -1;
    free(t->slots);
    t->slots = fresh;
    t->capacity = needed;
    t->count = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t fingerprint = fingerprints[i] ? fingerprints[i] : 1;
        slot_t *slot = find_slot(t->slots, needed - 1, fingerprint);
        if (slot->fingerprint == 0)
            t->count++;
        slot->fingerprint = fingerprint;
        slot->first_seen_ms = first_seen_ms[i];
        slot->uplink_id = uplink_ids[i];
    }
    t->next_id = state->next_id;
    t->watermark = state->watermark;
    t->last_sweep_watermark = state->last_sweep_watermark;
    t->overflow = state->overflow;
    t->expired = state->expired;
    t->sweeps = state->sweeps;
    return 0;
}
