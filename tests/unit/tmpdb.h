/* tmpdb.h - a unit test's database file in a fresh temporary directory:
 * tmpdb_make makes /tmp/NAME.XXXXXX and names DIR/herd.db in it (the test
 * opens it as it needs: once, twice, at an old schema); tmpdb_remove
 * removes that file with SQLite's -wal and -shm, and the directory. */
#ifndef HERD_TEST_TMPDB_H
#define HERD_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline int
tmpdb_make(const char *name, char *dir, size_t dirsz, char *path, size_t pathsz)
{
	snprintf(dir, dirsz, "/tmp/%s.XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, pathsz, "%s/herd.db", dir);
	return 0;
}

static inline void
tmpdb_remove(const char *dir, const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

#endif
