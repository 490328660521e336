/*
 * Plugins the host must refuse, one per macro:
 *   BROKEN_ABI        built for another ABI major
 *   BROKEN_INIT       init fails
 *   BROKEN_PATTERN    a channel pattern that does not compile
 *   BROKEN_CONNECT    on_connect bound to a channel
 *   BROKEN_NO_ENTRY   no sio_plugin_entry symbol
 *   BROKEN_NULL_INFO  sio_plugin_entry returns NULL
 *   BROKEN_NULL_NAME  the description has no name
 *   BROKEN_INIT_CRASH init dereferences NULL
 */
#include <stddef.h>

#include "sio_plugin.h"

static sio_status handler(const sio_event *event, void *user_data) {
    (void)event;
    (void)user_data;
    return SIO_OK;
}

static sio_status init(const sio_host_api *api, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
#if defined(BROKEN_INIT)
    (void)api; (void)plugin;
    return SIO_FAIL;
#elif defined(BROKEN_INIT_CRASH)
    (void)api; (void)plugin;
    return *(volatile sio_status *)0;
#elif defined(BROKEN_PATTERN)
    api->register_handler(plugin, SIO_EVENT_MESSAGE, "room-(", handler, NULL);
    return SIO_OK;
#elif defined(BROKEN_CONNECT)
    api->register_handler(plugin, SIO_EVENT_CONNECT, "^room-", handler, NULL);
    return SIO_OK;
#else
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, handler, NULL);
#endif
}

#if defined(BROKEN_ABI)
#define MAJOR (SIO_ABI_MAJOR + 1)
#else
#define MAJOR SIO_ABI_MAJOR
#endif

#if defined(BROKEN_NULL_NAME)
#define NAME NULL
#else
#define NAME "broken"
#endif

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = NAME, .version = "0.0.1", .init = init,
};

#if defined(BROKEN_NO_ENTRY)
SIO_EXPORT const sio_plugin_info *some_other_symbol(void) { return &info; }
#elif defined(BROKEN_NULL_INFO)
SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return NULL; }
#else
SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
#endif
