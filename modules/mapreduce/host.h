/* The MapReduce host id: two processes with the same id see the same files
 * at the same absolute paths, so a reader may open a map or reduce output
 * in place instead of fetching it over the network. */
#ifndef NODE_MR_HOST_H
#define NODE_MR_HOST_H

#include <stddef.h>

/* The first line of /proc/sys/kernel/random/boot_id (the running kernel's
 * boot, so a rebooted machine is a new host), else gethostname().
 * $NODE_MR_HOST_ID, when set and not empty, is used instead: tests make
 * one machine look like several with it.
 * Fills out (NUL-terminated, at least 64 bytes are enough); 0, or -1 when
 * neither is available (out is then ""). */
int mr_host_id(char *out, size_t n);

#endif
