/* The two clocks node reads: wall time for timestamps that travel (records,
 * signatures, status), monotonic time for deadlines and intervals. */
#ifndef NODE_CLOCK_H
#define NODE_CLOCK_H

#include <stdint.h>

int64_t node_clock_wall_ms(void);
int64_t node_clock_mono_ms(void);

#endif
