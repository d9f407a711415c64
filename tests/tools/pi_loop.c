/* The plain C loop the pi figure compares node against: Monte Carlo pi with
 * the very splitmix64 draw of the worker's pi task, on one core.
 *   pi_loop POINTS [SEED]   prints the estimate, the seconds and points/s */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pi_loop POINTS [SEED]\n");
		return 2;
	}
	long long points = strtoll(argv[1], NULL, 10);
	uint64_t s = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t inside = 0;
	for (long long i = 0; i < points; i++) {
		uint64_t z = (s += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		z ^= z >> 31;
		uint64_t x = z >> 32, y = z & 0xffffffffu;
		inside += x * x <= ~(y * y);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("pi ~ %.6f from %lld points: %.3f s on one core, %.3g points/s\n", 4.0 * (double)inside / (double)points,
	    points, secs, (double)points / secs);
	return 0;
}
