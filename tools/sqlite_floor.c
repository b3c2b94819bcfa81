/* How fast SQLite itself stores the reading rows of a million-line ingest, without Python:
 * prepared statements and sqlite3_bind_* from C, the same schema variants, six transactions.
 * It separates the cost of SQLite's B-trees from the cost of Python's sqlite3 binding.
 *
 *   python tools/dump_readings.py big.sqlite readings.tsv
 *   gcc -O2 tools/sqlite_floor.c -o /tmp/sqlite_floor -lsqlite3 && /tmp/sqlite_floor readings.tsv
 *
 * readings.tsv: the readings table, one row per line (13 tab-separated columns, empty =
 * NULL), a line "#COMMIT" after each transaction's rows. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLUMNS "device_uid TEXT NOT NULL, reading_time TEXT NOT NULL, quantity TEXT NOT NULL, " \
    "storage INTEGER NOT NULL, tariff INTEGER NOT NULL, subunit INTEGER NOT NULL, function TEXT NOT NULL, " \
    "value REAL, unit TEXT NOT NULL, valid INTEGER NOT NULL, building_id TEXT, unit_id TEXT, uplink_key TEXT NOT NULL"
#define KEY "PRIMARY KEY (device_uid, reading_time, quantity, storage, tariff, subunit, function)"
#define INSERT "INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define UPSERT INSERT " ON CONFLICT DO UPDATE SET uplink_key = min(uplink_key, excluded.uplink_key)"

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void run(char **lines, int count, const char *name, const char *schema, const char *sql)
{
    const char *path = "/tmp/sqlite_floor.sqlite";
    remove(path);
    remove("/tmp/sqlite_floor.sqlite-wal");
    remove("/tmp/sqlite_floor.sqlite-shm");
    sqlite3 *db;
    sqlite3_stmt *statement;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;", 0, 0, 0) ||
        sqlite3_exec(db, schema, 0, 0, 0) || sqlite3_prepare_v2(db, sql, -1, &statement, 0)) {
        fprintf(stderr, "%s\n", sqlite3_errmsg(db));
        exit(1);
    }
    long rows = 0;
    double start = seconds();
    sqlite3_exec(db, "BEGIN", 0, 0, 0);
    for (int i = 0; i < count; i++) {
        if (lines[i][0] == '#') {
            sqlite3_exec(db, "COMMIT; BEGIN", 0, 0, 0);
            continue;
        }
        char *field = lines[i];
        for (int column = 0; column < 13; column++) {
            char *end = strpbrk(field, "\t\n");
            int length = (int)(end - field);
            if (length == 0)
                sqlite3_bind_null(statement, column + 1);
            else if (column == 3 || column == 4 || column == 5 || column == 9)
                sqlite3_bind_int64(statement, column + 1, atoll(field));
            else if (column == 7)
                sqlite3_bind_double(statement, column + 1, atof(field));
            else
                sqlite3_bind_text(statement, column + 1, field, length, SQLITE_STATIC);
            field = end + 1;
        }
        if (sqlite3_step(statement) != SQLITE_DONE) {
            fprintf(stderr, "%s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(statement);
        rows++;
    }
    sqlite3_exec(db, "COMMIT", 0, 0, 0);
    double took = seconds() - start;
    printf("%-44s %ld rows %.2f s  %.2f us/row\n", name, rows, took, took / (double)rows * 1e6);
    sqlite3_finalize(statement);
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s readings.tsv\n", argv[0]);
        return 2;
    }
    FILE *file = fopen(argv[1], "r");
    if (!file) {
        perror(argv[1]);
        return 1;
    }
    int capacity = 1 << 20, count = 0;
    char **lines = malloc(sizeof(char *) * (size_t)capacity);
    char line[2048];
    while (fgets(line, sizeof line, file)) {
        if (count == capacity)
            lines = realloc(lines, sizeof(char *) * (size_t)(capacity *= 2));
        lines[count++] = strdup(line);
    }
    run(lines, count, "rowid table, no key", "CREATE TABLE readings (" COLUMNS ");", INSERT);
    run(lines, count, "keyed (WITHOUT ROWID), upsert", "CREATE TABLE readings (" COLUMNS ", " KEY ") WITHOUT ROWID;", UPSERT);
    run(lines, count, "keyed, upsert, unit index (the store's)",
        "CREATE TABLE readings (" COLUMNS ", " KEY ") WITHOUT ROWID;"
        "CREATE INDEX readings_by_unit ON readings (unit_id, quantity, reading_time);",
        UPSERT);
    return 0;
}
