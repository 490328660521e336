/*
 * sio_regex.h — channel patterns on RE2, whose matching takes time linear in the subject.
 *
 * Channel names come from clients; a backtracking engine lets one name and one careless
 * pattern ("(a+)+$") stop a network thread for minutes. RE2 never backtracks.
 */
#ifndef SIO_REGEX_H
#define SIO_REGEX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sio_regex sio_regex;

/* Compiles `pattern` (UTF-8, `length` bytes). On failure returns NULL and, when `error` is not
 * NULL, sets *error to a malloc'ed NUL-terminated reason the caller frees. */
sio_regex *sio_regex_compile(const char *pattern, size_t length, char **error);

/* 1 when the pattern matches at the start of `text` (Python's re.match), 0 otherwise. Safe to
 * call from several threads at once. */
int sio_regex_match_prefix(const sio_regex *regex, const char *text, size_t length);

void sio_regex_free(sio_regex *regex);

#ifdef __cplusplus
}
#endif

#endif
