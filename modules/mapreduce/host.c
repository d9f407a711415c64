/* The host id shared by the MapReduce master and workers (host.h): the
 * kernel's boot id, else the host name, unless the environment says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/host.h"

int mr_host_id(char *out, size_t n)
{
	if (!out || n == 0)
		return -1;
	out[0] = '\0';
	const char *env = getenv("NODE_MR_HOST_ID");
	if (env && env[0]) {
		snprintf(out, n, "%s", env);
		return 0;
	}
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (f) {
		char *ok = fgets(out, (int)n, f);
		fclose(f);
		if (ok) {
			out[strcspn(out, "\r\n")] = '\0';
			if (out[0])
				return 0;
		}
	}
	if (gethostname(out, n) == 0) {
		out[n - 1] = '\0';
		if (out[0])
			return 0;
	}
	out[0] = '\0';
	return -1;
}
