#ifndef CT_CORE_CLOCK_H
#define CT_CORE_CLOCK_H

/* Seconds on the monotonic clock: for durations (step times, stage times, latencies), never for
 * dates, so a wall-clock change during a run cannot make a duration negative. */
double ct_seconds_now(void);

#endif
