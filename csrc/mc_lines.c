/* Collector log lines read into columns (the ingest's log reader).
 *
 * Only the common shape is read here: one JSON object per line whose strings are printable
 * ASCII without escapes, whose numbers have no exponent and at most 15 digits (40 with a
 * fraction where the C library reads them whatever the process's locale, see
 * long_numbers), with exactly one of "frame"/"telegram"/"hex" holding an even number of hex
 * digits, at most one of "gateway"/"gateway_id" (not empty), a time that is a number inside
 * 1970..9999 or a UTC time text "YYYY-MM-DDThh:mm:ss[.f]" (1 to 6 fraction digits, then
 * "Z", "+00:00" or nothing) before 2255, and no key given twice. Every other line is
 * marked for the Python reader, which reads it, or names its defect, exactly as before:
 * what is read here is what the Python reader would make of the line, never something
 * else. */
/* strtod_l and newlocale (POSIX 2008 and GNU) under -std=c99. */
#define _GNU_SOURCE
#include "minolcore.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif

#define MAX_EVENT_TIME 253402300800.0
#define MAX_DIGITS 15
/* Longer numbers are read by strtod_l in the "C" locale: correctly rounded, as Python's
 * float() is, with '.' as the decimal point whatever the process's locale. 40 digits
 * without exponent can neither overflow nor reach the subnormal range. */
#define MAX_LONG_DIGITS 40

#if defined(__GLIBC__) || defined(__APPLE__)
static locale_t c_numeric = (locale_t)0;

/* Made once when the library is loaded (by the one thread that imports it), then only
 * read. Every category "C": with no base locale, macOS fills the others from the current
 * locale, glibc from "C". */
__attribute__((constructor)) static void make_c_numeric(void)
{
    c_numeric = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int long_numbers(void) { return c_numeric != (locale_t)0; }

static double long_number_value(const uint8_t *text, size_t length)
{
    char copy[MAX_LONG_DIGITS + 3]; /* sign, point, digits, NUL */
    memcpy(copy, text, length);
    copy[length] = '\0';
    return strtod_l(copy, NULL, c_numeric);
}
#else
static int long_numbers(void) { return 0; }

static double long_number_value(const uint8_t *text, size_t length)
{
    (void)text;
    (void)length;
    return NAN;
}
#endif

int mc_long_numbers(void) { return long_numbers(); }

enum { KEY_OTHER, KEY_FRAME, KEY_TELEGRAM, KEY_HEX, KEY_GATEWAY, KEY_GATEWAY_ID, KEY_RECEIVED_AT, KEY_TIME,
       KEY_TS, KEY_RSSI, KEY_MODE, KEY_COUNT };

static const char *const KEY_NAMES[KEY_COUNT] = {"", "frame", "telegram", "hex", "gateway", "gateway_id",
                                                 "received_at", "time", "ts", "rssi", "mode"};

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} cursor;

typedef struct {
    int present;
    int is_string;
    const uint8_t *text; /* a string's contents, or a number's text */
    size_t length;
} field;

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void skip_space(cursor *c)
{
    while (c->at < c->end && is_space(*c->at))
        c->at++;
}

static uint64_t load_8(const uint8_t *p)
{
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Nonzero when one of the 8 bytes of word is '"', '\\', below 0x20 or above 0x7E (the
 * bit tricks of "Bit Twiddling Hacks": each test is exact as a whole, for n <= 128). */
static uint64_t has_string_stop(uint64_t word)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\');
    uint64_t zero_in_quote = (quote - ones) & ~quote, zero_in_backslash = (backslash - ones) & ~backslash;
    uint64_t below_space = (word - ones * 0x20) & ~word, above_tilde = (word + ones) | word;
    return (zero_in_quote | zero_in_backslash | below_space | above_tilde) & highs;
}

/* A string without escapes or bytes outside printable ASCII; 0 when the line needs Python. */
static int read_string(cursor *c, const uint8_t **text, size_t *length)
{
    if (c->at >= c->end || *c->at != '"')
        return 0;
    const uint8_t *start = ++c->at;
    /* Eight bytes at a time up to the chunk that holds the end (or a byte to refuse). */
    while (c->end - c->at >= 8) {
        uint64_t stops = has_string_stop(load_8(c->at));
        if (stops == 0) {
            c->at += 8;
            continue;
        }
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The lowest flagged byte is the first stop (each test is exact at its lowest). */
        c->at += __builtin_ctzll(stops) / 8;
#endif
        break;
    }
    while (c->at < c->end && *c->at != '"') {
        uint8_t byte = *c->at;
        if (byte < 0x20 || byte > 0x7E || byte == '\\')
            return 0;
        c->at++;
    }
    if (c->at >= c->end)
        return 0;
    *text = start;
    *length = (size_t)(c->at - start);
    c->at++;
    return 1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most MAX_DIGITS digits in all, or up to
 * MAX_LONG_DIGITS with a fraction where long_numbers(): number_value reads them as Python's
 * float() does. Other numbers (longer integers too) are Python's. */
static int read_number(cursor *c, const uint8_t **text, size_t *length)
{
    const uint8_t *start = c->at;
    if (c->at < c->end && *c->at == '-')
        c->at++;
    const uint8_t *digits = c->at;
    if (c->at >= c->end || *c->at < '0' || *c->at > '9')
        return 0;
    if (*c->at == '0') {
        c->at++;
    } else {
        while (c->at < c->end && *c->at >= '0' && *c->at <= '9')
            c->at++;
    }
    ptrdiff_t count = c->at - digits;
    int fraction_given = c->at < c->end && *c->at == '.';
    if (fraction_given) {
        const uint8_t *fraction = ++c->at;
        while (c->at < c->end && *c->at >= '0' && *c->at <= '9')
            c->at++;
        if (c->at == fraction)
            return 0;
        count += c->at - fraction;
    }
    if (count > MAX_DIGITS && !(fraction_given && count <= MAX_LONG_DIGITS && long_numbers()))
        return 0;
    /* An exponent, or a digit after a leading zero, is left to Python. */
    if (c->at < c->end && (*c->at == 'e' || *c->at == 'E' || (*c->at >= '0' && *c->at <= '9')))
        return 0;
    *text = start;
    *length = (size_t)(c->at - start);
    return 1;
}

static double number_value(const field *f)
{
    size_t digits_given = f->length - (f->text[0] == '-') - (memchr(f->text, '.', f->length) != NULL);
    if (digits_given > MAX_DIGITS)
        return long_number_value(f->text, f->length); /* a fraction: read_number saw to it */
    /* At most 15 digits: they are exact as a double, and so is 10^fraction, so one correctly
     * rounded division gives the nearest double, as Python's float() does. */
    static const double POWERS[MAX_DIGITS + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const uint8_t *p = f->text, *end = f->text + f->length;
    int negative = *p == '-';
    p += negative;
    uint64_t digits = 0;
    int fraction = -1;
    for (; p < end; p++) {
        if (*p == '.') {
            fraction = 0;
            continue;
        }
        digits = digits * 10 + (uint64_t)(*p - '0');
        fraction += fraction >= 0;
    }
    double value = (double)digits / POWERS[fraction < 0 ? 0 : fraction];
    /* JSON -0 is the integer 0 for the line reader (+0.0); -0.0 stays negative. */
    return negative && (digits != 0 || fraction >= 0) ? -value : value;
}

/* The value of the n ASCII digits at p, or -1 when one is not a digit. */
static int64_t digits_value(const uint8_t *p, int n)
{
    int64_t value = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        value = value * 10 + (p[i] - '0');
    }
    return value;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = year / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* Unix seconds of a UTC time text "YYYY-MM-DDThh:mm:ss[.f]" with 1 to 6 fraction digits and
 * "Z", "+00:00" or no offset, from 1970 to before 2255: the whole microseconds are then
 * exact in a double, so one division gives what Python's datetime.timestamp() gives (the
 * microseconds divided as integers, correctly rounded). 0 for any other text. */
static int iso_seconds(const uint8_t *text, size_t length, double *seconds)
{
    static const int DAYS_IN_MONTH[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (length < 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':')
        return 0;
    int64_t year = digits_value(text, 4), month = digits_value(text + 5, 2), day = digits_value(text + 8, 2);
    int64_t hour = digits_value(text + 11, 2), minute = digits_value(text + 14, 2);
    int64_t second = digits_value(text + 17, 2);
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month] || hour < 0 || hour > 23 ||
        minute < 0 || minute > 59 || second < 0 || second > 59)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return 0;
    size_t at = 19;
    int64_t micros = 0;
    if (at < length && text[at] == '.') {
        size_t start = ++at;
        while (at < length && at - start < 7 && text[at] >= '0' && text[at] <= '9')
            at++;
        size_t count = at - start;
        if (count < 1 || count > 6)
            return 0;
        micros = digits_value(text + start, (int)count);
        for (size_t i = count; i < 6; i++)
            micros *= 10;
    }
    size_t rest = length - at;
    if (!(rest == 0 || (rest == 1 && text[at] == 'Z') || (rest == 6 && memcmp(text + at, "+00:00", 6) == 0)))
        return 0;
    int64_t whole = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * 1000000 + micros;
    if (whole >= (INT64_C(1) << 53))
        return 0;
    *seconds = (double)whole / 1e6;
    return 1;
}

static int key_is(const uint8_t *text, size_t length, int key)
{
    return memcmp(text, KEY_NAMES[key], length) == 0 ? key : KEY_OTHER;
}

static int key_of(const uint8_t *text, size_t length)
{
    /* By length first: one comparison per key rather than one per known key. */
    switch (length) {
    case 2:
        return key_is(text, 2, KEY_TS);
    case 3:
        return key_is(text, 3, KEY_HEX);
    case 4:
        return text[0] == 't' ? key_is(text, 4, KEY_TIME)
               : text[0] == 'r' ? key_is(text, 4, KEY_RSSI)
                                : key_is(text, 4, KEY_MODE);
    case 5:
        return key_is(text, 5, KEY_FRAME);
    case 7:
        return key_is(text, 7, KEY_GATEWAY);
    case 8:
        return key_is(text, 8, KEY_TELEGRAM);
    case 10:
        return key_is(text, 10, KEY_GATEWAY_ID);
    case 11:
        return key_is(text, 11, KEY_RECEIVED_AT);
    default:
        return KEY_OTHER;
    }
}

/* The value of each hex digit, and NOT_HEX (a bit no digit has) for every other byte. */
#define NOT_HEX 16
static const uint8_t HEX_NIBBLES[256] = {
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 16, 16, 16, 16, 16, 16,
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
};

/* Eight hex digits (the first in the lowest byte) as four bytes in memory order; 0 when one
 * is not a hex digit. With every byte below 0x80, (byte | 0x80) - n has its top bit set
 * exactly when byte >= n, and no borrow crosses into the next byte. */
static int hex_8(uint64_t digits, uint32_t *bytes)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones * 0x80;
    if (digits & highs)
        return 0;
    uint64_t set = digits | highs, folded = digits | ones * 0x20 | highs; /* 'A'-'F' as 'a'-'f' */
    uint64_t decimal = ((set - ones * '0') & ~(set - ones * ('9' + 1))) & highs;
    uint64_t letter = ((folded - ones * 'a') & ~(folded - ones * ('f' + 1))) & highs;
    if ((decimal | letter) != highs)
        return 0;
    /* A digit's value is its low four bits, plus 9 for a letter (bit 0x40 set). */
    uint64_t nibbles = (digits & ones * 0x0F) + ((digits >> 6) & ones) * 9;
    uint64_t pairs = ((nibbles << 4) | (nibbles >> 8)) & UINT64_C(0x00FF00FF00FF00FF);
    pairs = (pairs | (pairs >> 8)) & UINT64_C(0x0000FFFF0000FFFF);
    *bytes = (uint32_t)(pairs | (pairs >> 16));
    return 1;
}

/* A string of hex digits decoded into out as it is read, in one pass: such a string is
 * one read_string takes, so the line reads as before. 0 for any other string (which then
 * leaves the line to Python) and for an odd number of digits. */
static int read_hex_string(cursor *c, const uint8_t **text, size_t *length, uint8_t *out)
{
    if (c->at >= c->end || *c->at != '"')
        return 0;
    const uint8_t *start = c->at + 1;
    const uint8_t *close = memchr(start, '"', (size_t)(c->end - start));
    if (close == NULL || (close - start) % 2)
        return 0;
    size_t bytes = (size_t)(close - start) / 2;
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 4 <= bytes; i += 4) {
        uint32_t four;
        if (!hex_8(load_8(start + 2 * i), &four))
            return 0;
        memcpy(out + i, &four, sizeof four);
    }
#endif
    unsigned seen = 0; /* NOT_HEX once any byte is not a hex digit */
    for (; i < bytes; i++) {
        unsigned high = HEX_NIBBLES[start[2 * i]], low = HEX_NIBBLES[start[2 * i + 1]];
        seen |= high | low;
        out[i] = (uint8_t)(high << 4 | low);
    }
    if (seen & NOT_HEX)
        return 0;
    *text = start;
    *length = (size_t)(close - start);
    c->at = close + 1;
    return 1;
}

static int32_t gateway_index(const uint8_t *text, size_t length, const uint8_t *names,
                             const int64_t *name_offsets, size_t n_names)
{
    for (size_t i = 0; i < n_names; i++) {
        size_t name_length = (size_t)(name_offsets[i + 1] - name_offsets[i]);
        if (name_length == length && memcmp(names + name_offsets[i], text, length) == 0)
            return (int32_t)i;
    }
    return MC_GATEWAY_UNKNOWN;
}

/* Reads one line (without its newline) into row; 0 when the line needs Python. */
static int read_line(const uint8_t *line, size_t length, const uint8_t *names, const int64_t *name_offsets,
                     size_t n_names, mc_collector_line *row, uint8_t *out)
{
    field fields[KEY_COUNT];
    memset(fields, 0, sizeof fields);
    cursor c = {line, line + length};
    skip_space(&c);
    if (c.at >= c.end || *c.at != '{')
        return 0;
    c.at++;
    skip_space(&c);
    if (c.at < c.end && *c.at == '}') {
        c.at++;
    } else {
        for (;;) {
            const uint8_t *key_text;
            size_t key_length;
            skip_space(&c);
            if (!read_string(&c, &key_text, &key_length))
                return 0;
            skip_space(&c);
            if (c.at >= c.end || *c.at != ':')
                return 0;
            c.at++;
            skip_space(&c);
            int key = key_of(key_text, key_length);
            if (key != KEY_OTHER && fields[key].present)
                return 0; /* given twice */
            /* Scalars, not a field struct filled through pointers and then copied whole:
             * a wide load of narrower stores just made stalls the processor. */
            const uint8_t *text = NULL;
            size_t text_length = 0;
            int is_string = c.at < c.end && *c.at == '"';
            if (is_string) {
                if (key >= KEY_FRAME && key <= KEY_HEX) {
                    /* Any second frame leaves the line to Python below: out is then unused. */
                    if (!read_hex_string(&c, &text, &text_length, out))
                        return 0;
                } else if (!read_string(&c, &text, &text_length)) {
                    return 0;
                }
            } else if (!read_number(&c, &text, &text_length)) {
                return 0;
            }
            if (key != KEY_OTHER) {
                fields[key].present = 1;
                fields[key].is_string = is_string;
                fields[key].text = text;
                fields[key].length = text_length;
            }
            skip_space(&c);
            if (c.at < c.end && *c.at == ',') {
                c.at++;
                continue;
            }
            if (c.at < c.end && *c.at == '}') {
                c.at++;
                break;
            }
            return 0;
        }
    }
    skip_space(&c);
    if (c.at != c.end)
        return 0;
    /* Kinds the Python reader would accept or refuse: strings where text belongs, numbers
     * for the level, numbers or the UTC time texts iso_seconds reads for the time. */
    static const int TEXT_KEYS[] = {KEY_FRAME, KEY_TELEGRAM, KEY_HEX, KEY_GATEWAY, KEY_GATEWAY_ID, KEY_MODE};
    for (size_t i = 0; i < sizeof TEXT_KEYS / sizeof TEXT_KEYS[0]; i++) {
        if (fields[TEXT_KEYS[i]].present && !fields[TEXT_KEYS[i]].is_string)
            return 0;
    }
    if (fields[KEY_RSSI].present && fields[KEY_RSSI].is_string)
        return 0;
    const field *frame = NULL;
    int frames = 0;
    for (int key = KEY_FRAME; key <= KEY_HEX; key++) {
        if (fields[key].present) {
            frame = &fields[key];
            frames++;
        }
    }
    /* A frame given as a string is in out already (read_hex_string). */
    if (frames != 1 || frame->length == 0 || !frame->is_string)
        return 0;
    size_t payload_length = frame->length / 2;
    const field *gateway = fields[KEY_GATEWAY].present ? &fields[KEY_GATEWAY] : &fields[KEY_GATEWAY_ID];
    if (fields[KEY_GATEWAY].present && fields[KEY_GATEWAY_ID].present)
        return 0;
    row->gateway = MC_GATEWAY_DEFAULT;
    row->gateway_offset = 0;
    row->gateway_length = 0;
    if (gateway->present) {
        if (gateway->length == 0)
            return 0;
        row->gateway = gateway_index(gateway->text, gateway->length, names, name_offsets, n_names);
        row->gateway_offset = (int32_t)(gateway->text - line);
        row->gateway_length = (int32_t)gateway->length;
    }
    const field *when = fields[KEY_RECEIVED_AT].present ? &fields[KEY_RECEIVED_AT]
                        : fields[KEY_TIME].present  ? &fields[KEY_TIME]
                                                    : &fields[KEY_TS];
    row->received_at = NAN;
    if (when->present) {
        double seconds;
        if (when->is_string) {
            if (!iso_seconds(when->text, when->length, &seconds))
                return 0;
        } else {
            seconds = number_value(when);
        }
        if (!(seconds >= 0.0 && seconds < MAX_EVENT_TIME))
            return 0;
        row->received_at = seconds;
    }
    row->rssi = fields[KEY_RSSI].present ? number_value(&fields[KEY_RSSI]) : NAN;
    row->payload_length = (int32_t)payload_length;
    return 1;
}

size_t mc_read_collector_lines(const uint8_t *buf, size_t len, const uint8_t *names, const int64_t *name_offsets,
                               size_t n_names, mc_collector_line *rows, size_t max_rows, uint8_t *out)
{
    size_t count = 0, at = 0, used = 0;
    while (at < len && count < max_rows) {
        const uint8_t *newline = memchr(buf + at, '\n', len - at);
        size_t end = newline ? (size_t)(newline - buf) + 1 : len;
        mc_collector_line row;
        memset(&row, 0, sizeof row);
        row.line_offset = (int64_t)at;
        row.line_length = (int64_t)(end - at);
        row.payload_offset = (int64_t)used;
        size_t text_length = newline ? end - at - 1 : end - at;
        if (text_length <= INT32_MAX && read_line(buf + at, text_length, names, name_offsets, n_names, &row, out + used)) {
            row.status = MC_LINE_READ;
            used += (size_t)row.payload_length;
        } else {
            /* Nothing of a line left to Python is kept but where it is. */
            mc_collector_line left;
            memset(&left, 0, sizeof left);
            left.line_offset = row.line_offset;
            left.line_length = row.line_length;
            left.payload_offset = row.payload_offset;
            left.received_at = NAN;
            left.rssi = NAN;
            left.status = MC_LINE_FOR_PYTHON;
            row = left;
        }
        rows[count++] = row;
        at = end;
    }
    return count;
}
