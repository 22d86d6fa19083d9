/* main.c - herd-agent's entry: the statically linked build of what runs on
 * hosts (`herd-agent agent|meta|version`). The same sources as `herd agent`
 * and `herd meta`; the HTTP client is httpc-mini.c (sockets + mbedTLS)
 * instead of libcurl, and nothing of the server is linked in. */
#include <stdio.h>
#include <string.h>

#include "main.h"

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "agent") == 0)
		return agent_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "meta") == 0)
		return meta_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("herd %s\n", HERD_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: herd-agent agent|meta|version ...\n"
		"(the host-side part of herd, statically linked; the admin CLI and the\n"
		"server are in `herd`)\n");
	return 2;
}
