/* Rows bound from C onto a connection that Python's sqlite3 module opened.
 *
 * Python's sqlite3 binds one value at a time, with a type test in Python's C API and a copy
 * of every text (SQLITE_TRANSIENT). Here a statement's parameters are bound from columns:
 * arrays of integers or doubles, and texts packed one after another, bound in place
 * (SQLITE_STATIC) for the duration of the call.
 *
 * SQLite's functions are looked up at run time in the very library the sqlite3 module
 * loaded, never linked: a second copy of SQLite in one process would break the POSIX file
 * locks of the first. The connection's handle comes from SQLite's auto-extension hook, which
 * the library calls for every connection it opens.
 */
#include "minolcore.h"

#include <string.h>

#ifdef _WIN32

int mc_sql_bind_library(const char *module_path) { return 0; }
int mc_sql_watch_opens(void) { return 1; }
void *mc_sql_take_opened(void) { return NULL; }
int mc_sql_prepare(void *db, const char *sql, void **statement) { return 1; }
void mc_sql_finalize(void *statement) {}
int mc_sql_insert(void *db, void *many, int64_t rows_per_many, void *one, const mc_sql_column *columns,
                  int width, int64_t rows, char *error, size_t error_size) { return 1; }

#else

#include <dlfcn.h>
#include <stdlib.h>

#define SQLITE_OK 0
#define SQLITE_NOMEM 7
#define SQLITE_ERROR 1
#define SQLITE_MISUSE 21
#define SQLITE_RANGE 25
#define SQLITE_DONE 101
#define SQLITE_UTF8 1

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef void (*sqlite3_destructor)(void *);
typedef int64_t sqlite3_int64;
typedef uint64_t sqlite3_uint64;

/* The parts of SQLite's C interface used here; their signatures are fixed by SQLite's
 * promise of a stable ABI. */
static struct {
    int (*auto_extension)(void (*entry)(void));
    int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
    int (*finalize)(sqlite3_stmt *);
    int (*bind_int64)(sqlite3_stmt *, int, sqlite3_int64);
    int (*bind_double)(sqlite3_stmt *, int, double);
    int (*bind_null)(sqlite3_stmt *, int);
    int (*bind_text64)(sqlite3_stmt *, int, const char *, sqlite3_uint64, sqlite3_destructor, unsigned char);
    int (*bind_parameter_count)(sqlite3_stmt *);
    int (*clear_bindings)(sqlite3_stmt *);
    int (*step)(sqlite3_stmt *);
    int (*reset)(sqlite3_stmt *);
    const char *(*errmsg)(sqlite3 *);
    const char *(*errstr)(int);
} sql;

static int library_bound = 0;

int mc_sql_bind_library(const char *module_path)
{
    if (library_bound)
        return 1;
#ifdef RTLD_NOLOAD
    /* Only the module Python already loaded: looking a symbol up in its handle searches the
     * module and then the libraries it depends on, so this finds the module's own SQLite. */
    void *module = dlopen(module_path, RTLD_NOW | RTLD_NOLOAD);
#else
    void *module = NULL;
#endif
    if (module == NULL)
        return 0;
    void *found[13] = {
        dlsym(module, "sqlite3_auto_extension"), dlsym(module, "sqlite3_prepare_v2"),
        dlsym(module, "sqlite3_finalize"),       dlsym(module, "sqlite3_bind_int64"),
        dlsym(module, "sqlite3_bind_double"),    dlsym(module, "sqlite3_bind_null"),
        dlsym(module, "sqlite3_bind_text64"),    dlsym(module, "sqlite3_bind_parameter_count"),
        dlsym(module, "sqlite3_clear_bindings"), dlsym(module, "sqlite3_step"),
        dlsym(module, "sqlite3_reset"),          dlsym(module, "sqlite3_errmsg"),
        dlsym(module, "sqlite3_errstr"),
    };
    for (size_t i = 0; i < sizeof found / sizeof found[0]; i++) {
        if (found[i] == NULL) {
            dlclose(module);
            return 0;
        }
    }
    /* The module stays loaded as long as Python runs: the handle is kept, not closed. */
    memcpy(&sql.auto_extension, &found[0], sizeof(void *));
    memcpy(&sql.prepare_v2, &found[1], sizeof(void *));
    memcpy(&sql.finalize, &found[2], sizeof(void *));
    memcpy(&sql.bind_int64, &found[3], sizeof(void *));
    memcpy(&sql.bind_double, &found[4], sizeof(void *));
    memcpy(&sql.bind_null, &found[5], sizeof(void *));
    memcpy(&sql.bind_text64, &found[6], sizeof(void *));
    memcpy(&sql.bind_parameter_count, &found[7], sizeof(void *));
    memcpy(&sql.clear_bindings, &found[8], sizeof(void *));
    memcpy(&sql.step, &found[9], sizeof(void *));
    memcpy(&sql.reset, &found[10], sizeof(void *));
    memcpy(&sql.errmsg, &found[11], sizeof(void *));
    memcpy(&sql.errstr, &found[12], sizeof(void *));
    library_bound = 1;
    return 1;
}

/* Per thread: sqlite3_open runs in the thread that called it, so a connection opened here
 * is the one this thread's Python code just asked for, whatever other threads open. */
static _Thread_local sqlite3 *last_opened = NULL;

static int note_opened(sqlite3 *db, char **error, const void *api)
{
    last_opened = db;
    return SQLITE_OK;
}

int mc_sql_watch_opens(void)
{
    if (!library_bound)
        return SQLITE_MISUSE;
    /* SQLite takes an entry point of any signature and calls it as an extension's. Adding
     * the same entry again is a no-op. */
    void (*entry)(void);
    int (*note)(sqlite3 *, char **, const void *) = note_opened;
    memcpy(&entry, &note, sizeof entry);
    return sql.auto_extension(entry);
}

void *mc_sql_take_opened(void)
{
    sqlite3 *db = last_opened;
    last_opened = NULL;
    return db;
}

int mc_sql_prepare(void *db, const char *text, void **statement)
{
    sqlite3_stmt *prepared = NULL;
    if (!library_bound)
        return SQLITE_MISUSE;
    int rc = sql.prepare_v2((sqlite3 *)db, text, -1, &prepared, NULL);
    *statement = prepared;
    return rc;
}

void mc_sql_finalize(void *statement)
{
    if (library_bound && statement != NULL)
        sql.finalize((sqlite3_stmt *)statement);
}

static void copy_message(const char *message, char *error, size_t error_size)
{
    if (error_size == 0)
        return;
    size_t length = message == NULL ? 0 : strlen(message);
    if (length >= error_size)
        length = error_size - 1;
    if (length)
        memcpy(error, message, length);
    error[length] = '\0';
}

/* Binds row `row` of the columns to parameters first .. first + width - 1. */
static int bind_row(sqlite3_stmt *statement, int first, const mc_sql_column *columns, const char **texts,
                    int width, int64_t row)
{
    for (int c = 0; c < width; c++) {
        const mc_sql_column *column = &columns[c];
        int rc;
        int index = first + c;
        if (column->kind == MC_SQL_NULL || (column->nulls != NULL && column->nulls[row])) {
            rc = sql.bind_null(statement, index);
        } else if (column->kind == MC_SQL_INT64) {
            rc = sql.bind_int64(statement, index, ((const int64_t *)column->values)[row]);
        } else if (column->kind == MC_SQL_DOUBLE) {
            rc = sql.bind_double(statement, index, ((const double *)column->values)[row]);
        } else if (column->kind == MC_SQL_TABLE) {
            /* Entries and offsets were checked by mc_sql_insert. */
            int64_t entry = ((const int64_t *)column->values)[row];
            int64_t start = column->offsets[entry], end = column->offsets[entry + 1];
            rc = sql.bind_text64(statement, index, column->table + start, (sqlite3_uint64)(end - start),
                                 NULL /* SQLITE_STATIC */, SQLITE_UTF8);
        } else if (column->kind == MC_SQL_TEXT) {
            /* The texts of the rows that are not null, each followed by a NUL byte. */
            const char *text = texts[c];
            size_t length = strlen(text);
            texts[c] = text + length + 1;
            rc = sql.bind_text64(statement, index, text, length, NULL /* SQLITE_STATIC */, SQLITE_UTF8);
        } else {
            rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Binds `count` rows from row `row` on and runs the statement once. */
static int run_rows(sqlite3 *db, sqlite3_stmt *statement, const mc_sql_column *columns, const char **texts,
                    int width, int64_t row, int64_t count, char *error, size_t error_size)
{
    int rc = SQLITE_OK;
    for (int64_t r = 0; r < count && rc == SQLITE_OK; r++)
        rc = bind_row(statement, (int)(r * width) + 1, columns, texts, width, row + r);
    if (rc == SQLITE_OK) {
        rc = sql.step(statement);
        if (rc == SQLITE_DONE) {
            sql.reset(statement);
            return SQLITE_OK;
        }
        copy_message(sql.errmsg(db), error, error_size);
        sql.reset(statement);
        return rc;
    }
    copy_message(sql.errstr(rc), error, error_size);
    return rc;
}

int mc_sql_insert(void *db, void *many, int64_t rows_per_many, void *one, const mc_sql_column *columns,
                  int width, int64_t rows, char *error, size_t error_size)
{
    sqlite3_stmt *many_rows = (sqlite3_stmt *)many;
    sqlite3_stmt *one_row = (sqlite3_stmt *)one;
    copy_message("", error, error_size);
    if (!library_bound || width <= 0 || rows_per_many <= 0 || one_row == NULL ||
        sql.bind_parameter_count(one_row) != width ||
        (many_rows != NULL && sql.bind_parameter_count(many_rows) != rows_per_many * width)) {
        copy_message("statement and columns do not match", error, error_size);
        return SQLITE_MISUSE;
    }
    /* Table entries are checked before any row runs, so that a bad one changes nothing. */
    for (int c = 0; c < width; c++) {
        const mc_sql_column *column = &columns[c];
        if (column->kind != MC_SQL_TABLE)
            continue;
        for (int64_t e = 0; e < column->entries; e++) {
            if (column->offsets[e] < 0 || column->offsets[e + 1] < column->offsets[e] ||
                column->offsets[e + 1] > column->table_bytes) {
                copy_message("a table's offsets are out of order", error, error_size);
                return SQLITE_RANGE;
            }
        }
        for (int64_t row = 0; row < rows; row++) {
            int64_t entry = ((const int64_t *)column->values)[row];
            if ((column->nulls == NULL || !column->nulls[row]) && (entry < 0 || entry >= column->entries)) {
                copy_message("a row's table entry is out of range", error, error_size);
                return SQLITE_RANGE;
            }
        }
    }
    const char **texts = malloc((size_t)width * sizeof *texts);
    if (texts == NULL) {
        copy_message("out of memory", error, error_size);
        return SQLITE_NOMEM;
    }
    for (int c = 0; c < width; c++)
        texts[c] = columns[c].kind == MC_SQL_TEXT ? (const char *)columns[c].values : NULL;
    int rc = SQLITE_OK;
    int64_t row = 0;
    if (many_rows != NULL) {
        for (; rc == SQLITE_OK && rows - row >= rows_per_many; row += rows_per_many)
            rc = run_rows(db, many_rows, columns, texts, width, row, rows_per_many, error, error_size);
        /* The statement holds no pointer into the caller's texts once the call returns. */
        sql.clear_bindings(many_rows);
    }
    for (; rc == SQLITE_OK && row < rows; row++)
        rc = run_rows(db, one_row, columns, texts, width, row, 1, error, error_size);
    sql.clear_bindings(one_row);
    free(texts);
    return rc;
}

#endif
