/* main.c - herd's entry: `herd server|agent|meta|version|<noun> <verb>`.
 * One binary holds every part; this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "main.h"

int
main(int argc, char **argv)
{
	/* `herd server status` is an admin command; `herd server ...` the server */
	if (argc >= 2 && strcmp(argv[1], "server") == 0 &&
	    !(argc >= 3 && strcmp(argv[2], "status") == 0))
		return server_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "agent") == 0)
		return agent_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "meta") == 0)
		return meta_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("herd %s\n", HERD_VERSION);
		return 0;
	}
	return cli_main(argc, argv);
}
