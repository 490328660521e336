"""The ABI header: it compiles warning-free as C11 and C++ under gcc and clang, and the layout of
every public struct is pinned, so an accidental ABI break fails here."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

HEADER = ROOT / "include" / "sio_plugin.h"
LAYOUT = ROOT / "Tests" / "abi" / "layout.c"

# ABI 1 on LP64 (x86_64, aarch64). Fields are only ever appended: a change to any line below is
# an ABI break; appending a field adds lines and grows a sizeof.
PINNED = {
    "sizeof(sio_buf)": 16,
    "offsetof(sio_buf,ptr)": 0,
    "offsetof(sio_buf,len)": 8,
    "sizeof(sio_header)": 32,
    "offsetof(sio_header,name)": 0,
    "offsetof(sio_header,value)": 16,
    "sizeof(sio_request)": 88,
    "offsetof(sio_request,struct_size)": 0,
    "offsetof(sio_request,method)": 8,
    "offsetof(sio_request,path)": 24,
    "offsetof(sio_request,query)": 40,
    "offsetof(sio_request,remote_addr)": 56,
    "offsetof(sio_request,headers)": 72,
    "offsetof(sio_request,header_count)": 80,
    "sizeof(sio_message)": 64,
    "offsetof(sio_message,struct_size)": 0,
    "offsetof(sio_message,event)": 8,
    "offsetof(sio_message,args_json)": 24,
    "offsetof(sio_message,attachments)": 40,
    "offsetof(sio_message,attachment_count)": 48,
    "offsetof(sio_message,ack_id)": 56,
    "sizeof(sio_event)": 136,
    "offsetof(sio_event,struct_size)": 0,
    "offsetof(sio_event,kind)": 8,
    "offsetof(sio_event,socket)": 16,
    "offsetof(sio_event,request)": 24,
    "offsetof(sio_event,socket_id)": 32,
    "offsetof(sio_event,nsp)": 48,
    "offsetof(sio_event,channel)": 64,
    "offsetof(sio_event,message)": 80,
    "offsetof(sio_event,error)": 88,
    "offsetof(sio_event,auth_json)": 104,
    "offsetof(sio_event,reason)": 120,
    "sizeof(sio_host_api)": 280,
    "offsetof(sio_host_api,struct_size)": 0,
    "offsetof(sio_host_api,abi_major)": 8,
    "offsetof(sio_host_api,abi_minor)": 12,
    "offsetof(sio_host_api,register_handler)": 16,
    "offsetof(sio_host_api,set_reason)": 24,
    "offsetof(sio_host_api,send)": 32,
    "offsetof(sio_host_api,broadcast)": 40,
    "offsetof(sio_host_api,broadcast_channel)": 48,
    "offsetof(sio_host_api,send_and_broadcast)": 56,
    "offsetof(sio_host_api,send_and_broadcast_channel)": 64,
    "offsetof(sio_host_api,emit)": 72,
    "offsetof(sio_host_api,ack)": 80,
    "offsetof(sio_host_api,subscribe)": 88,
    "offsetof(sio_host_api,unsubscribe)": 96,
    "offsetof(sio_host_api,disconnect)": 104,
    "offsetof(sio_host_api,context_set)": 112,
    "offsetof(sio_host_api,context_get)": 120,
    "offsetof(sio_host_api,context_delete)": 128,
    "offsetof(sio_host_api,oob_broadcast)": 136,
    "offsetof(sio_host_api,oob_broadcast_channel)": 144,
    "offsetof(sio_host_api,oob_send)": 152,
    "offsetof(sio_host_api,log)": 160,
    "offsetof(sio_host_api,json_get_string)": 168,
    "offsetof(sio_host_api,json_quote)": 176,
    # ABI 1.2, appended.
    "offsetof(sio_host_api,emit_to)": 184,
    "offsetof(sio_host_api,oob_emit)": 192,
    "offsetof(sio_host_api,oob_emit_to_socket)": 200,
    "offsetof(sio_host_api,emit_with_ack)": 208,
    # ABI 1.3, appended.
    "offsetof(sio_host_api,defer)": 216,
    "offsetof(sio_host_api,complete)": 224,
    # ABI 1.4, appended.
    "offsetof(sio_host_api,presence_set)": 232,
    "offsetof(sio_host_api,presence_list)": 240,
    "offsetof(sio_host_api,oob_presence_count)": 248,
    "offsetof(sio_host_api,oob_socket_join)": 256,
    "offsetof(sio_host_api,oob_socket_leave)": 264,
    "offsetof(sio_host_api,oob_socket_disconnect)": 272,
    "sizeof(sio_ack_reply)": 88,
    "offsetof(sio_ack_reply,struct_size)": 0,
    "offsetof(sio_ack_reply,status)": 8,
    "offsetof(sio_ack_reply,socket)": 16,
    "offsetof(sio_ack_reply,socket_id)": 24,
    "offsetof(sio_ack_reply,nsp)": 40,
    "offsetof(sio_ack_reply,args_json)": 56,
    "offsetof(sio_ack_reply,attachments)": 72,
    "offsetof(sio_ack_reply,attachment_count)": 80,
    "sizeof(sio_plugin_info)": 56,
    "offsetof(sio_plugin_info,struct_size)": 0,
    "offsetof(sio_plugin_info,abi_major)": 8,
    "offsetof(sio_plugin_info,abi_minor)": 12,
    "offsetof(sio_plugin_info,name)": 16,
    "offsetof(sio_plugin_info,version)": 24,
    "offsetof(sio_plugin_info,init)": 32,
    "offsetof(sio_plugin_info,retire)": 40,
    "offsetof(sio_plugin_info,adopt)": 48,
    "sizeof(sio_event_kind)": 4,
    "sizeof(sio_status)": 4,
}

COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("language,standard", [("c", "-std=c11"), ("c++", "-std=c++11"), ("c++", "-std=c++17")])
def test_header_compiles_warning_free(compiler, language, standard, tmp_path):
    source = tmp_path / ("use.c" if language == "c" else "use.cpp")
    source.write_text('#include "sio_plugin.h"\nint main(void) { sio_buf b = { 0, 0 }; (void)b; return SIO_ABI_MAJOR - 1; }\n')
    subprocess.run([compiler, "-x", language, standard, "-Wall", "-Wextra", "-pedantic", "-Werror",
                    f"-I{HEADER.parent}", "-o", str(tmp_path / "use"), str(source)], check=True)
    assert subprocess.run([str(tmp_path / "use")]).returncode == 0


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("language", ["c", "c++"])
def test_struct_layout_is_pinned(compiler, language, tmp_path):
    binary = tmp_path / "layout"
    subprocess.run([compiler, "-x", language, f"-I{HEADER.parent}", "-o", str(binary), str(LAYOUT)], check=True)
    output = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    measured = {name: int(value) for name, value in (line.split(" ") for line in output.splitlines())}
    assert measured == PINNED


def test_a_plugin_built_against_the_1_0_header_loads_and_behaves_unchanged(start_server, tmp_path):
    """Tests/abi/1.0/sio_plugin.h is the header as ABI 1.0 shipped it: a build against it (its
    host table is shorter, its info has no adopt) loads on this host and behaves as it did."""
    import socketio
    from conftest import BUILD_DIR, wait_until
    from plugins import plugin_dir

    directory = plugin_dir(tmp_path)
    plugin = directory / "echo-1.0.so"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O1",
                    f"-I{ROOT / 'Tests' / 'abi' / '1.0'}", "-o", str(plugin), str(ROOT / "Plugins" / "echo-c" / "echo.c")], check=True)
    os.chmod(plugin, 0o755)
    checked = subprocess.run([str(BUILD_DIR / "sio"), "check-plugin", str(plugin)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "ABI 1.0" in checked.stdout, checked.stdout + checked.stderr
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    received = []
    c = socketio.Client(reconnection=False)
    c.on("message", received.append)
    c.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        c.send({"echo": 1})
        assert wait_until(lambda: received == [{"echo": 1}])
        assert c.call("anything", [1, 2], timeout=5) == [1, 2]
    finally:
        c.disconnect()
