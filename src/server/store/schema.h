/* schema.h - the store's versioned schema (schema.c), one list for every
 * backend: migration N brings the schema from version N-1 to N. */
#ifndef HERD_STORE_SCHEMA_H
#define HERD_STORE_SCHEMA_H

struct store_migration {
	/* SQLite's text; PostgreSQL runs it with its column types translated */
	const char *sql;
	/* PostgreSQL's text, when the translation is not enough (NULL: none) */
	const char *pg;
};

extern const struct store_migration store_migrations[];
extern const int store_migrations_n;

#endif
