/* store-at.c - a test tool: makes a store at an older schema version with
 * herd's real migrations (store_open_at), so that tests of a migration
 * start from what an older herd wrote without undoing later migrations by
 * hand. `store-at VERSION DB`: DB is a SQLite file (DATA/herd.db) or a
 * store DSN; a new one is created, an existing one below VERSION migrated
 * up to it. Built by `make` as build/tests/store-at; never installed. */
#include <stdio.h>

#include "store/store.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct herr err = HERR_INIT;
	struct store *st;
	long v;

	if (argc != 3 || parse_long(argv[1], 1, 1000, &v) < 0) {
		fprintf(stderr, "usage: store-at VERSION DB (VERSION: a schema version from 1)\n");
		return 2;
	}
	if ((st = store_open_at(argv[2], (int)v, &err)) == NULL) {
		fprintf(stderr, "store-at: %s\n", err.msg);
		return 1;
	}
	store_close(st);
	return 0;
}
