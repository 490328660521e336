/* The few Linux calls Swift's Glibc module does not bring: the plugin runner's tie to the
 * server's life. */
#ifndef SIO_SYSTEM_H
#define SIO_SYSTEM_H

/* The calling process gets SIGKILL when its parent dies; 0 on success, -1 with errno. */
int sio_die_with_parent(void);

#endif
