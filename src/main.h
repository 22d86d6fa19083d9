/* main.h - the entry points of herd's parts, dispatched from main.c. Each
 * takes the arguments after its own word (argv[0] is that word). */
#ifndef HERD_MAIN_H
#define HERD_MAIN_H

#define HERD_VERSION "0.1.0"

int server_main(int argc, char **argv);   /* src/server/server.c */
int agent_main(int argc, char **argv);    /* src/agent/agent.c */
int meta_main(int argc, char **argv);     /* src/cli/cmd-meta.c */
int cli_main(int argc, char **argv);      /* src/cli/cmd.c: admin CLI */

#endif
