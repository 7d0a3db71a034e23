/*
 * param.h: reading the request's query string.
 */
#ifndef PARAM_H
#define PARAM_H

#define PARAM_COUNT_MIN 1
#define PARAM_COUNT_MAX 500

/*
 * param_count: the TechEmpower clamping of a row-count parameter.
 *
 * Finds the first `name=value` pair of the query string (pairs separated
 * by '&'; %XX escapes in the value are decoded) and returns its value
 * clamped to [PARAM_COUNT_MIN, PARAM_COUNT_MAX].  A missing or empty parameter,
 * a value that is not a whole decimal integer, or one below PARAM_COUNT_MIN
 * gives PARAM_COUNT_MIN; one above PARAM_COUNT_MAX, however long, gives
 * PARAM_COUNT_MAX. query may be NULL.
 */
int param_count(const char *query, const char *name);

#endif
