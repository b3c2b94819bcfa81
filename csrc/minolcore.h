/* minolcore C core: the hot loops of the frame layer and the dedupe table.
 *
 * C99, libc only (mc_sqlite.c: POSIX dlopen and threads, and the SQLite library that
 * Python's sqlite3 module loaded). Every function here has a pure-Python twin in
 * src/minolcore/_reference/, and the equivalence tests prove them equal.
 * The cdef part of build_ffi.py repeats these declarations for cffi.
 */
#ifndef MINOLCORE_H
#define MINOLCORE_H

#include <stddef.h>
#include <stdint.h>

/* Status of one frame in a batch; the numbers match minolcore.wmbus.FrameStatus. */
enum {
    MC_OK = 0,
    MC_TOO_SHORT = 1,
    MC_L_FIELD = 2,
    MC_CRC = 3,
    MC_HEADER_TRUNCATED = 4
};

/* CRC shapes and caller modes; numbers match CRCShape and CRCMode. */
enum { MC_SHAPE_NONE = 0, MC_SHAPE_A = 1, MC_SHAPE_B = 2 };
enum { MC_MODE_AUTO = 0, MC_MODE_PRESENT = 1, MC_MODE_ABSENT = 2 };

/* Bits of mc_frame_info.flags; numbers match minolcore.wmbus.scan.Flag. */
enum {
    MC_FLAG_ELL = 1,
    MC_FLAG_AFL = 2,
    MC_FLAG_TPL = 4,
    MC_FLAG_LONG_TPL = 8,
    MC_FLAG_MCR = 16,
    MC_FLAG_L_REWRITTEN = 32,
    MC_FLAG_HIDDEN = 64
};

/* One row of the scan result; the layout matches FRAME_INFO_DTYPE (56 bytes). */
typedef struct {
    uint64_t fingerprint;
    int64_t out_offset;
    uint32_t id;
    uint32_t meter_id;
    uint32_t message_counter;
    uint16_t manufacturer;
    uint16_t meter_manufacturer;
    uint16_t out_length;
    uint16_t trailing;
    uint16_t apl_offset; /* where the bytes after the last parsed header start, in the frame */
    uint8_t status;
    uint8_t crc_shape;
    uint8_t flags;
    uint8_t c_field;
    uint8_t version;
    uint8_t device_type;
    uint8_t ci;
    uint8_t tpl_ci;
    uint8_t meter_version;
    uint8_t meter_device_type;
    uint8_t acc;
    uint8_t security_mode;
    uint8_t encrypted_blocks;
    uint8_t reserved[5];
} mc_frame_info;

/* Status of one application layer in mc_walk_records; numbers match
 * minolcore.wmbus.record_batch.WalkStatus. HANDOVER: a record needs the Python walker
 * (LVAR data, plain-text VIF); MALFORMED: the walk stops at a bad record; NO_ROOM: the
 * row array is full. stop_offset names the record in all three cases. */
enum { MC_WALK_OK = 0, MC_WALK_HANDOVER = 1, MC_WALK_MALFORMED = 2, MC_WALK_NO_ROOM = 3 };

/* Bits of mc_record.flags; numbers match minolcore.wmbus.record_batch.RecordFlag. */
enum { MC_REC_NUMBER = 1, MC_REC_MANUFACTURER_DATA = 2, MC_REC_MORE_FOLLOWS = 4, MC_REC_GLOBAL_READOUT = 8 };

/* One data record; the layout matches RECORD_DTYPE (80 bytes). value (integers, BCD) and
 * real (all numbers) hold the unscaled number when flags has MC_REC_NUMBER; integers are
 * read as two's complement. Offsets are relative to the application layer. */
typedef struct {
    int64_t value;
    double real;
    uint64_t storage;
    int32_t telegram;
    int32_t offset;
    int32_t data_offset;
    int32_t data_length;
    uint32_t tariff;
    uint16_t subunit;
    uint8_t dib_length;
    uint8_t vib_length;
    uint8_t dib[11];
    uint8_t vib[11];
    uint8_t coding;
    uint8_t function;
    uint8_t flags;
    uint8_t reserved[7];
} mc_record;

/* Per application layer: its rows are rows[first_record : first_record + record_count];
 * signature is the CRC-16/EN-13757 over the headers of those rows. */
typedef struct {
    int64_t first_record;
    int32_t record_count;
    int32_t stop_offset;
    uint16_t signature;
    uint8_t status;
    uint8_t reserved[5];
} mc_walk_info;

const char *mc_version(void);

/* CRC-16/EN-13757 of len bytes. */
uint16_t mc_crc16(const uint8_t *data, size_t len);

/* SipHash-2-4 of len bytes under a 16-byte key. */
uint64_t mc_siphash24(const uint8_t *key, const uint8_t *data, size_t len);

/* Validate, strip and fingerprint n frames at buf[offsets[i]:offsets[i]+lengths[i]], each
 * in CRC mode modes[i] (MC_MODE_*), or in mode when modes is NULL.
 * The canonical CRC-free frame (and any trailing bytes) of frame i is written to
 * out[info[i].out_offset:...], where out_offset is the sum of the lengths before i; out
 * must hold the sum of all lengths. The caller checks the bounds and the modes. */
void mc_scan(const uint8_t *buf, const int64_t *offsets, const int32_t *lengths, size_t n,
             int mode, const uint8_t *modes, const uint8_t *key, uint8_t *out, mc_frame_info *info);

/* Walk the data records of n application layers at buf[offsets[i]:offsets[i]+lengths[i]]
 * (mc_records.c). Rows are packed in batch order, at most max_rows; returns the rows used. */
size_t mc_walk_records(const uint8_t *buf, const int64_t *offsets, const int32_t *lengths, size_t n,
                       mc_record *rows, size_t max_rows, mc_walk_info *info);

/* Number the layouts of the telegrams chosen[0..n_chosen) (mc_layouts.c). Telegram t's
 * records are rows[firsts[t] : firsts[t] + counts[t]]; its layout key is their header bytes
 * buffer[apl_offsets[t] + offset : apl_offsets[t] + data_offset], one record after the
 * other. Telegrams whose keys are the same bytes share a layout. group_of[i] is the layout
 * of chosen[i], numbered in order of first appearance; heads[g] is the i of layout g's first
 * telegram (heads needs room for n_chosen). Returns the number of layouts, or
 * MC_LAYOUT_RANGE when a telegram, its rows or a header lie outside their arrays, or
 * MC_LAYOUT_NOMEM; the outputs are then unspecified. */
enum { MC_LAYOUT_RANGE = -1, MC_LAYOUT_NOMEM = -2 };
int64_t mc_layout_groups(const uint8_t *buffer, size_t buffer_len, const int64_t *apl_offsets,
                         size_t n_telegrams, const mc_record *rows, size_t n_rows, const int64_t *firsts,
                         const int32_t *counts, const int64_t *chosen, size_t n_chosen, int64_t *group_of,
                         int64_t *heads);

/* Group rows 0..n_rows by their keys keys[i * width : (i + 1) * width] (mc_groups.c): rows
 * whose keys are the same bytes share a group. group_of[i] is row i's group, numbered in
 * order of first appearance (whatever the seed: it only varies the hash, so that keys
 * cannot be chosen to share slots); first[g] is the row of group g with the smallest
 * order[row] (order NULL: its first row), of equal ones the first. With text_of, smallest[g] is the
 * text entry, of those its rows name (text_of[row]), whose text
 * texts[text_starts[t] : text_ends[t]] sorts first bytewise (a prefix first); of equal
 * texts the one of the row first by order, then row. first and smallest need room for
 * n_rows. Returns the number of groups, or MC_GROUPS_RANGE when the keys do not fit in
 * keys_len bytes or a text entry or text lies outside its array, or MC_GROUPS_NOMEM; the
 * outputs are then unspecified. */
enum { MC_GROUPS_RANGE = -1, MC_GROUPS_NOMEM = -2 };
int64_t mc_key_groups(const uint8_t *keys, size_t keys_len, size_t n_rows, size_t width, const int64_t *order,
                      const int64_t *text_of, const uint8_t *texts, size_t texts_len, const int64_t *text_starts,
                      const int64_t *text_ends, size_t n_texts, int64_t *group_of, int64_t *first,
                      int64_t *smallest, uint64_t seed);

/* The dedupe table (mc_dedupe.c). */
typedef struct mc_dedupe mc_dedupe;

typedef struct {
    uint64_t count;
    uint64_t capacity;
    uint64_t max_capacity;
    int64_t next_id;
    int64_t watermark;
    int64_t last_sweep_watermark;
    uint64_t overflow;
    uint64_t expired;
    uint64_t sweeps;
    int64_t retention_ms;
} mc_dedupe_stats;

mc_dedupe *mc_dedupe_new(uint64_t initial_capacity, uint64_t max_capacity, int64_t retention_ms);
void mc_dedupe_free(mc_dedupe *table);
/* For each item: the uplink id it belongs to and whether it opened that uplink. -1 on no memory. */
int mc_dedupe_batch(mc_dedupe *table, const uint64_t *fingerprints, const int64_t *times_ms, size_t n,
                    int64_t window_ms, int64_t *uplink_ids, uint8_t *is_new);
void mc_dedupe_get_stats(const mc_dedupe *table, mc_dedupe_stats *out);
size_t mc_dedupe_export(const mc_dedupe *table, uint64_t *fingerprints, int64_t *first_seen_ms,
                        int64_t *uplink_ids, size_t max_entries);
int mc_dedupe_restore(mc_dedupe *table, const uint64_t *fingerprints, const int64_t *first_seen_ms,
                      const int64_t *uplink_ids, size_t n, const mc_dedupe_stats *state);

/* The receptions of each uplink as one JSON array of [gateway, received_ms, rssi, snr]
 * (mc_json.c). Group g holds copies group_starts[g] .. group_starts[g+1]-1 of n_copies; the
 * gateway, RSSI and SNR of a copy are pieces: pieces[piece_offsets[p]:piece_offsets[p+1]] is JSON text the
 * caller encoded (n_pieces pieces). Group g's text is out[out_offsets[g]:out_offsets[g+1]].
 * Returns the bytes written, or -1 (nothing usable) for a piece index out of range, a
 * group start that decreases or lies outside the copies, or too small an out. */
int64_t mc_join_receptions(const int64_t *group_starts, size_t n_groups, size_t n_copies,
                           const int32_t *gateway_piece,
                           const int64_t *received_ms, const int32_t *rssi_piece, const int32_t *snr_piece,
                           const uint8_t *pieces, const int64_t *piece_offsets, size_t n_pieces,
                           uint8_t *out, size_t out_capacity, int64_t *out_offsets);

/* Collector log lines (mc_lines.c). status of a line: */
#define MC_LINE_READ 0
#define MC_LINE_FOR_PYTHON 1
/* gateway of a read line, besides an index into the names: */
#define MC_GATEWAY_UNKNOWN -1
#define MC_GATEWAY_DEFAULT -2

typedef struct {
    int64_t line_offset;    /* where the line starts in buf */
    int64_t line_length;    /* its bytes, the newline included */
    int64_t payload_offset; /* where its frame starts in out */
    double received_at;     /* s since the epoch; NaN: the line names no time */
    double rssi;            /* dBm; NaN: none given */
    int32_t payload_length; /* bytes */
    int32_t gateway;        /* index into the names, or MC_GATEWAY_UNKNOWN / MC_GATEWAY_DEFAULT */
    int32_t gateway_offset; /* the gateway id's text, from the line's start */
    int32_t gateway_length;
    uint8_t status;
    uint8_t reserved[7];
} mc_collector_line;

/* Split buf (len bytes) into lines at each newline (a last line may lack one) and read each
 * line of the common collector shape: its frame's bytes to out, the rest into its row; other
 * lines get status MC_LINE_FOR_PYTHON. Gateway ids are looked up in n_names names, name i
 * being names[name_offsets[i]:name_offsets[i+1]]. At most max_rows lines; returns the lines
 * done. out must hold len / 2 bytes. */
size_t mc_read_collector_lines(const uint8_t *buf, size_t len, const uint8_t *names, const int64_t *name_offsets,
                               size_t n_names, mc_collector_line *rows, size_t max_rows, uint8_t *out);

/* 1 when mc_read_collector_lines reads numbers of 16 to 40 digits with a fraction itself
 * (the C library reads them in the "C" locale), 0 when it leaves them to Python. */
int mc_long_numbers(void);

/* Rows bound from C onto a connection of Python's sqlite3 module (mc_sqlite.c). */
enum { MC_SQL_NULL = 0, MC_SQL_INT64 = 1, MC_SQL_DOUBLE = 2, MC_SQL_TEXT = 3, MC_SQL_TABLE = 4 };

typedef struct {
    int kind;              /* MC_SQL_*: every row of the column binds this type, or NULL */
    const void *values;    /* int64_t[rows] or double[rows]; for MC_SQL_TEXT the UTF-8 text of
                              each row that is not null, followed by a NUL byte; for
                              MC_SQL_TABLE int64_t[rows], each row's entry of the table */
    const uint8_t *nulls;  /* NULL, or per row: not 0 where the row binds NULL */
    const char *table;     /* MC_SQL_TABLE: entry e is table[offsets[e]:offsets[e+1]] (UTF-8) */
    const int64_t *offsets; /* entries + 1 of them, from 0 up to table_bytes */
    int64_t entries;
    int64_t table_bytes;
} mc_sql_column;

/* Look SQLite's functions up in the already loaded module at module_path (the sqlite3
 * module's extension, which uses the library). 1 when all are found, else 0: the caller
 * binds through Python's sqlite3 instead. */
int mc_sql_bind_library(const char *module_path);
/* Have SQLite give every connection it opens from now on (its auto-extension hook) an SQL
 * function minolcore_connection() returning a number of the connection's own; returns
 * SQLite's result code. */
int mc_sql_watch_opens(void);
/* The connection whose minolcore_connection() returns `number`, or NULL once it closed. */
void *mc_sql_connection(int64_t number);
/* sqlite3_prepare_v2 and sqlite3_finalize on a connection from mc_sql_connection. */
int mc_sql_prepare(void *db, const char *sql, void **statement);
void mc_sql_finalize(void *statement);
/* Run an INSERT for `rows` rows of `width` columns: `many` (NULL or a statement of
 * rows_per_many rows) as often as whole chunks fit, then `one` (a one-row statement) for each
 * row left. Returns SQLite's result code (0 when every row ran) with SQLite's message in
 * error; rows run before a failing one stay in the open transaction, as with executemany. A
 * row's table entry out of range, or a table's offsets out of order, refuse the call whole
 * with SQLITE_RANGE before any row runs; statements that do not take `width` values per row,
 * with SQLITE_MISUSE. */
int mc_sql_insert(void *db, void *many, int64_t rows_per_many, void *one, const mc_sql_column *columns,
                  int width, int64_t rows, char *error, size_t error_size);

#endif
