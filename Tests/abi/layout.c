/* Prints the layout of every public struct of sio_plugin.h, one "name value" per line. */
#include <stddef.h>
#include <stdio.h>

#include "sio_plugin.h"

#define SIZE(T) printf("sizeof(" #T ") %zu\n", sizeof(T))
#define OFF(T, F) printf("offsetof(" #T "," #F ") %zu\n", offsetof(T, F))

int main(void) {
    SIZE(sio_buf); OFF(sio_buf, ptr); OFF(sio_buf, len);
    SIZE(sio_header); OFF(sio_header, name); OFF(sio_header, value);
    SIZE(sio_request); OFF(sio_request, struct_size); OFF(sio_request, method); OFF(sio_request, path);
    OFF(sio_request, query); OFF(sio_request, remote_addr); OFF(sio_request, headers); OFF(sio_request, header_count);
    SIZE(sio_message); OFF(sio_message, struct_size); OFF(sio_message, event); OFF(sio_message, args_json);
    OFF(sio_message, attachments); OFF(sio_message, attachment_count); OFF(sio_message, ack_id);
    SIZE(sio_event); OFF(sio_event, struct_size); OFF(sio_event, kind); OFF(sio_event, socket); OFF(sio_event, request);
    OFF(sio_event, socket_id); OFF(sio_event, nsp); OFF(sio_event, channel); OFF(sio_event, message); OFF(sio_event, error);
    OFF(sio_event, auth_json); OFF(sio_event, reason);
    SIZE(sio_host_api); OFF(sio_host_api, struct_size); OFF(sio_host_api, abi_major); OFF(sio_host_api, abi_minor);
    OFF(sio_host_api, register_handler); OFF(sio_host_api, set_reason); OFF(sio_host_api, send); OFF(sio_host_api, broadcast);
    OFF(sio_host_api, broadcast_channel); OFF(sio_host_api, send_and_broadcast); OFF(sio_host_api, send_and_broadcast_channel);
    OFF(sio_host_api, emit); OFF(sio_host_api, ack); OFF(sio_host_api, subscribe); OFF(sio_host_api, unsubscribe);
    OFF(sio_host_api, disconnect); OFF(sio_host_api, context_set); OFF(sio_host_api, context_get); OFF(sio_host_api, context_delete);
    OFF(sio_host_api, oob_broadcast); OFF(sio_host_api, oob_broadcast_channel); OFF(sio_host_api, oob_send); OFF(sio_host_api, log);
    OFF(sio_host_api, json_get_string); OFF(sio_host_api, json_quote);
    OFF(sio_host_api, emit_to); OFF(sio_host_api, oob_emit); OFF(sio_host_api, oob_emit_to_socket);
    OFF(sio_host_api, emit_with_ack); OFF(sio_host_api, defer); OFF(sio_host_api, complete);
    OFF(sio_host_api, presence_set); OFF(sio_host_api, presence_list); OFF(sio_host_api, oob_presence_count);
    OFF(sio_host_api, oob_socket_join); OFF(sio_host_api, oob_socket_leave); OFF(sio_host_api, oob_socket_disconnect);
    SIZE(sio_ack_reply); OFF(sio_ack_reply, struct_size); OFF(sio_ack_reply, status); OFF(sio_ack_reply, socket);
    OFF(sio_ack_reply, socket_id); OFF(sio_ack_reply, nsp); OFF(sio_ack_reply, args_json); OFF(sio_ack_reply, attachments); OFF(sio_ack_reply, attachment_count);
    SIZE(sio_plugin_info); OFF(sio_plugin_info, struct_size); OFF(sio_plugin_info, abi_major); OFF(sio_plugin_info, abi_minor);
    OFF(sio_plugin_info, name); OFF(sio_plugin_info, version); OFF(sio_plugin_info, init); OFF(sio_plugin_info, retire); OFF(sio_plugin_info, adopt);
    SIZE(sio_event_kind); SIZE(sio_status);
    return 0;
}
