/* csv.h — CSV files as HF datasets' csv loader reads them (what Axolotl uses
 * for ds_type: csv and .csv paths): pandas.read_csv with its defaults, in
 * chunks of 10,000 rows, each chunk's columns typed by pandas and cast to the
 * first chunk's types, as HF datasets writes them (datasets 5.2, pandas 3).
 *
 * rt_csv_rows(buf, len, name, sep, out, d) writes the file's rows as JSON
 * lines into out, one object a row, the columns in header order:
 *  - tokens: sep between fields; '"' opens a quoted field only at a field's
 *    start, where "" is a quote and separators and line breaks are text;
 *    text after a closing quote joins the field ("ab"c = abc); a quote inside
 *    an unquoted field is text. Lines end at \n, \r\n or \r. Empty and
 *    whitespace-only lines are skipped. A UTF-8 BOM at the start is dropped.
 *  - header: the first record; an empty name is "Unnamed: i", a repeated one
 *    gets ".k" (the first k that is not a name already).
 *  - values: pandas' missing-value strings ("", NA, N/A, NaN, nan, null,
 *    NULL, None, <NA>, #N/A, ...; quoted or not) are null; a record with
 *    fewer fields than the header has nulls for the rest. A column of a chunk
 *    is int64 when every other value is an integer (spaces and a sign allowed;
 *    uint64 above 2^63 - 1 when none is negative, rendered as a double as
 *    JSON cannot hold it; beside a negative or a missing value such a one is
 *    refused, as pandas' reading of it depends on the values' order),
 *    float64 (numbers; an int column with a null; inf
 *    and Infinity) when every value is a number, bool when every value is
 *    True/TRUE/true/False/FALSE/false, else string (the text as written).
 *    Later chunks are cast to the first chunk's types as pyarrow casts them:
 *    int -> float, integral floats -> int, int/bool -> string; a cast pyarrow
 *    refuses (a fraction to int, text to a number) is an error, as in HF
 *    datasets; casts axo does not reproduce (float -> string) are errors too.
 *    inf is rendered null, with a warning naming the column (JSON has none).
 * Errors name name:line: invalid UTF-8, a NUL, more fields than the header
 * (pandas would take the first column as an index, or fail), a quote open at
 * the end, an integer beyond 64 bits, no header. Returns 0 or -1. */
#ifndef RT_CSV_H
#define RT_CSV_H

#include "ir/base.h"

int rt_csv_rows(const char *buf, size_t len, const char *name, char sep, ax_buf *out, ax_diag *d);

#endif
