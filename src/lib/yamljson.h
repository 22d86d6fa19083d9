/* yamljson.h - turns one YAML document (a blueprint) into a jansson tree and
 * remembers the source line of every node by its JSON path, so a validator
 * working on JSON can still say "blueprint.yaml:42: groups[1].size ...".
 * Only the JSON-shaped subset of YAML is accepted: no anchors, aliases, tags
 * or multiple documents. */
#ifndef HERD_YAMLJSON_H
#define HERD_YAMLJSON_H

#include <stddef.h>

#include <jansson.h>

#include "herr.h"

#define YAMLJSON_MAX_BYTES (1024 * 1024) /* largest document accepted */
#define YAMLJSON_MAX_DEPTH 64            /* deepest nesting of collections */
#define YAMLJSON_MAX_PATH 4096           /* longest JSON path of a node, bytes */

struct linemap; /* JSON path -> line, see linemap_line() */

/* Parses `len` bytes of YAML text (need not be NUL-terminated).
 *
 * Plain scalars are typed like YAML 1.2's core schema, narrowed for safety:
 * `null`, `Null`, `NULL`, `~` and empty are null; `true`/`false` (also
 * capitalised or upper-case) are booleans; decimal integers without leading
 * zeros that fit in 64 bits are integers (larger ones, `007`, `0x1f` stay
 * strings); decimals like `1.5`, `-2e3` are reals (`.inf` and `.nan` stay
 * strings, JSON has no such numbers). `yes`/`no`/`on`/`off` stay strings.
 * Quoted and block scalars are always strings. Mapping keys are always the
 * scalar's text. An empty stream gives JSON null.
 *
 * On success returns 0, sets *out to a new reference (the caller
 * json_decref()s it) and, if `lines` is not NULL, *lines to a new linemap
 * (the caller linemap_free()s it).
 *
 * Errors (nothing is returned in *out / *lines then):
 *   HERR_TOOBIG   the text is over YAMLJSON_MAX_BYTES, nesting is deeper than
 *                 YAMLJSON_MAX_DEPTH, or a path gets longer than
 *                 YAMLJSON_MAX_PATH
 *   HERR_INVALID  a syntax error, a duplicate key, a non-scalar key, an
 *                 anchor, alias or tag, a second document, a NUL character
 * Every message starts with "line N: " (1-based) when a line is known, so
 * a caller can prefix just the file name; err->field holds the JSON path of
 * the offending node when there is one ("clusters[0].groups"). */
int yaml_to_json(const char *text, size_t len, json_t **out, struct linemap **lines,
		 struct herr *err);

/* Line (1-based) a JSON path like "clusters[0].groups[1].size" came from.
 * For a mapping member that is the line of its key, for a sequence item the
 * line it starts on, for "" the first line of the document. A path that is
 * not in the document falls back to its longest known prefix, so a missing
 * field points at the object that lacks it. Returns 0 if not even the first
 * component is known or m is NULL. Keys containing '.' or '[' cannot be
 * addressed (the path syntax has no escapes); they fall back likewise. */
int linemap_line(const struct linemap *m, const char *path);

/* Like linemap_line() but the line the node's value starts on, which for a
 * member whose value is a block collection is the line after its key. */
int linemap_value_line(const struct linemap *m, const char *path);

/* Frees a linemap from yaml_to_json(); NULL is fine. */
void linemap_free(struct linemap *m);

#endif
