/* main.c — the `shoal` tool: dispatches to its subcommands. Built only on
 * the public API (shoal.h), like hwloc's utilities. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
    "usage: shoal <command> [options]\n"
    "\n"
    "commands:\n"
    "  stress   runs a simulated bot population against the tick budget\n"
    "  topo     the CPU, the hardware topology and shoal's worker plan\n"
    "\n"
    "'shoal <command> --help' describes a command; 'shoal --version' prints\n"
    "the library's version.\n");
}

int main(int argc, char **argv) {
  /* A closed pipe is a write error to report, not a silent death. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (strcmp(argv[1], "stress") == 0)
    return cmd_stress(argc - 1, argv + 1);
  if (strcmp(argv[1], "topo") == 0)
    return cmd_topo(argc - 1, argv + 1);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return cli_finish_output("shoal", CLI_OK);
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("shoal %s\n", shoal_version());
    return cli_finish_output("shoal", CLI_OK);
  }
  fprintf(stderr, "shoal: unknown command '%s' (see 'shoal --help')\n", argv[1]);
  return CLI_USAGE;
}
