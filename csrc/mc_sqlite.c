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
 * the library calls for every connection it opens: it gives each connection an SQL function,
 * minolcore_connection(), returning a number of the connection's own, which leads back to the
 * handle (mc_sql_connection) until the connection closes and SQLite drops the function. So
 * the handle is asked of the connection itself, never guessed from the order of opens.
 */
#include "minolcore.h"

#include <string.h>

#ifdef _WIN32

int mc_sql_bind_library(const char *module_path) { return 0; }
int mc_sql_watch_opens(void) { return 1; }
void *mc_sql_connection(int64_t number) { return NULL; }
int mc_sql_prepare(void *db, const char *sql, void **statement) { return 1; }
void mc_sql_finalize(void *statement) {}
int mc_sql_insert(void *db, void *many, int64_t rows_per_many, void *one, const mc_sql_column *columns,
                  int width, int64_t rows, char *error, size_t error_size) { return 1; }

#else

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#define SQLITE_OK 0
#define SQLITE_NOMEM 7
#define SQLITE_MISUSE 21
#define SQLITE_RANGE 25
#define SQLITE_DONE 101
#define SQLITE_UTF8 1

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef struct sqlite3_context sqlite3_context;
typedef struct sqlite3_value sqlite3_value;
typedef struct sqlite3_mutex sqlite3_mutex;
typedef void (*sqlite3_function)(sqlite3_context *, int, sqlite3_value **);
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
    int (*create_function_v2)(sqlite3 *, const char *, int, int, void *, sqlite3_function, sqlite3_function,
                              void (*)(sqlite3_context *), void (*)(void *));
    void *(*user_data)(sqlite3_context *);
    void (*result_int64)(sqlite3_context *, sqlite3_int64);
    sqlite3_mutex *(*db_mutex)(sqlite3 *);
    void (*mutex_enter)(sqlite3_mutex *);
    void (*mutex_leave)(sqlite3_mutex *);
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
    static const char *const names[] = {
        "sqlite3_auto_extension", "sqlite3_prepare_v2", "sqlite3_finalize", "sqlite3_bind_int64",
        "sqlite3_bind_double", "sqlite3_bind_null", "sqlite3_bind_text64", "sqlite3_bind_parameter_count",
        "sqlite3_clear_bindings", "sqlite3_step", "sqlite3_reset", "sqlite3_errmsg",
        "sqlite3_errstr", "sqlite3_create_function_v2", "sqlite3_user_data", "sqlite3_result_int64",
    };
    /* In the order of the names. */
    void *slots[] = {
        &sql.auto_extension, &sql.prepare_v2, &sql.finalize, &sql.bind_int64,
        &sql.bind_double, &sql.bind_null, &sql.bind_text64, &sql.bind_parameter_count,
        &sql.clear_bindings, &sql.step, &sql.reset, &sql.errmsg,
        &sql.errstr, &sql.create_function_v2, &sql.user_data, &sql.result_int64,
    };
    void *found[sizeof names / sizeof names[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        found[i] = dlsym(module, names[i]);
        if (found[i] == NULL) {
            dlclose(module);
            return 0;
        }
    }
    /* The module stays loaded as long as Python runs: the handle is kept, not closed. Object
     * pointers become function pointers by copying their bytes (ISO C has no cast for it). */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        memcpy(slots[i], &found[i], sizeof(void *));
    /* Optional: a library built without mutexes (SQLITE_THREADSAFE=0) need not export them,
     * and then has none to hold. */
    void *db_mutex = dlsym(module, "sqlite3_db_mutex"), *enter = dlsym(module, "sqlite3_mutex_enter"),
         *leave = dlsym(module, "sqlite3_mutex_leave");
    if (db_mutex != NULL && enter != NULL && leave != NULL) {
        memcpy(&sql.db_mutex, &db_mutex, sizeof(void *));
        memcpy(&sql.mutex_enter, &enter, sizeof(void *));
        memcpy(&sql.mutex_leave, &leave, sizeof(void *));
    }
    library_bound = 1;
    return 1;
}

/* The connections opened since mc_sql_watch_opens, each with its number, until they close. */
typedef struct known_connection {
    int64_t number;
    sqlite3 *db;
    struct known_connection *next;
} known_connection;

static known_connection *known = NULL;
static int64_t last_number = 0;
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

/* minolcore_connection(): the number of the connection that runs it. */
static void connection_number(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    const known_connection *entry = sql.user_data(context);
    sql.result_int64(context, entry->number);
}

/* SQLite drops the function when its connection closes (or when creating it failed). */
static void forget_connection(void *data)
{
    known_connection *entry = data;
    pthread_mutex_lock(&known_lock);
    for (known_connection **at = &known; *at != NULL; at = &(*at)->next) {
        if (*at == entry) {
            *at = entry->next;
            break;
        }
    }
    pthread_mutex_unlock(&known_lock);
    free(entry);
}

static int note_opened(sqlite3 *db, char **error, const void *api)
{
    known_connection *entry = malloc(sizeof *entry);
    if (entry == NULL)
        return SQLITE_OK; /* the connection stays unknown: Python's sqlite3 binds its rows */
    pthread_mutex_lock(&known_lock);
    entry->number = ++last_number;
    entry->db = db;
    entry->next = known;
    known = entry;
    pthread_mutex_unlock(&known_lock);
    sql.create_function_v2(db, "minolcore_connection", 0, SQLITE_UTF8, entry, connection_number, NULL, NULL,
                           forget_connection);
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

void *mc_sql_connection(int64_t number)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&known_lock);
    for (const known_connection *entry = known; entry != NULL; entry = entry->next) {
        if (entry->number == number) {
            db = entry->db;
            break;
        }
    }
    pthread_mutex_unlock(&known_lock);
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

/* Binds row `row` of the columns to parameters first .. first + width - 1. spans[c] holds
 * for a TABLE column the (start, end) of each row's text in its table. */
static int bind_row(sqlite3_stmt *statement, int first, const mc_sql_column *columns, const char **texts,
                    int64_t *const *spans, int width, int64_t row)
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
            int64_t start = spans[c][2 * row], end = spans[c][2 * row + 1];
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
                    int64_t *const *spans, int width, int64_t row, int64_t count, char *error, size_t error_size)
{
    int rc = SQLITE_OK;
#if defined(__GNUC__)
    /* The step copies each text into its record: the texts are fetched first, in a loop of
     * their own, where the processor overlaps the fetches (in key order, the rows' texts lie
     * all over their tables). */
    for (int c = 0; c < width; c++) {
        if (spans[c] == NULL)
            continue;
        for (int64_t r = row; r < row + count; r++) {
            int64_t start = spans[c][2 * r], end = spans[c][2 * r + 1];
            if (end > start) { /* not a null row's (0, 0), nor an empty text */
                __builtin_prefetch(columns[c].table + start);
                __builtin_prefetch(columns[c].table + end - 1);
            }
        }
    }
#endif
    for (int64_t r = 0; r < count && rc == SQLITE_OK; r++)
        rc = bind_row(statement, (int)(r * width) + 1, columns, texts, spans, width, row + r);
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
    int64_t **spans = calloc((size_t)width, sizeof *spans);
    int spans_made = texts != NULL && spans != NULL;
    for (int c = 0; spans_made && c < width; c++) {
        const mc_sql_column *column = &columns[c];
        if (column->kind != MC_SQL_TABLE)
            continue;
        /* Each row's text span, looked up in one pass before any bind: the lookups follow
         * the rows' entries all over the offsets, and in a loop of their own the processor
         * overlaps them, where between binds each would wait alone (16 bytes a row). */
        spans[c] = malloc((size_t)(rows > 0 ? rows : 1) * 2 * sizeof(int64_t));
        if (spans[c] == NULL) {
            spans_made = 0;
            break;
        }
        const int64_t *entries = (const int64_t *)column->values;
        for (int64_t row = 0; row < rows; row++) {
            int null = column->nulls != NULL && column->nulls[row];
            int64_t entry = null ? 0 : entries[row]; /* a null row's entry was not checked */
            spans[c][2 * row] = null ? 0 : column->offsets[entry];
            spans[c][2 * row + 1] = null ? 0 : column->offsets[entry + 1];
        }
    }
    if (!spans_made) {
        for (int c = 0; spans != NULL && c < width; c++)
            free(spans[c]);
        free(spans);
        free(texts);
        copy_message("out of memory", error, error_size);
        return SQLITE_NOMEM;
    }
    for (int c = 0; c < width; c++)
        texts[c] = columns[c].kind == MC_SQL_TEXT ? (const char *)columns[c].values : NULL;
    /* The connection's own (recursive) mutex, held across all rows: each bind and step then
     * re-enters a mutex this thread owns, without an atomic operation, and the error message
     * read after a failing step is that step's (another thread cannot run in between). NULL
     * where SQLite runs without mutexes. */
    sqlite3_mutex *mutex = sql.db_mutex != NULL ? sql.db_mutex((sqlite3 *)db) : NULL;
    if (mutex != NULL)
        sql.mutex_enter(mutex);
    int rc = SQLITE_OK;
    int64_t row = 0;
    if (many_rows != NULL) {
        for (; rc == SQLITE_OK && rows - row >= rows_per_many; row += rows_per_many)
            rc = run_rows(db, many_rows, columns, texts, spans, width, row, rows_per_many, error, error_size);
        /* The statement holds no pointer into the caller's texts once the call returns. */
        sql.clear_bindings(many_rows);
    }
    for (; rc == SQLITE_OK && row < rows; row++)
        rc = run_rows(db, one_row, columns, texts, spans, width, row, 1, error, error_size);
    sql.clear_bindings(one_row);
    if (mutex != NULL)
        sql.mutex_leave(mutex);
    for (int c = 0; c < width; c++)
        free(spans[c]);
    free(spans);
    free(texts);
    return rc;
}

#endif
