"""The reference server for the benchmarks: python-socketio on aiohttp + uvloop, with the same
relay semantics as Plugins/relay-c: `__subscribe__` joins the room, a `message` {"ch": ...} is
emitted to the room except the sender."""
import argparse

import socketio
import uvloop
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)


@sio.on("__subscribe__")
async def subscribe(sid, channel):
    await sio.enter_room(sid, channel)
    return True


@sio.on("__unsubscribe__")
async def unsubscribe(sid, channel):
    await sio.leave_room(sid, channel)
    return True


@sio.on("message")
async def message(sid, data):
    await sio.emit("message", data, room=data["ch"], skip_sid=sid)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    sio.attach(app)
    uvloop.install()
    print(f"reference: listening on 127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
