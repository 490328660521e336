"""The reference server for the benchmarks: python-socketio on aiohttp + uvloop, with the same
relay semantics as Plugins/relay-c: `__subscribe__` joins the room, a `message` {"ch": ...} is
emitted to the room except the sender. With --redis URL, several processes form one server through
python-socketio's AsyncRedisManager (the cluster benchmark, benchmarks/cluster.py)."""
import argparse

import socketio
import uvloop
from aiohttp import web

def make_server(redis=None):
    manager = socketio.AsyncRedisManager(redis) if redis else None
    return socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False, client_manager=manager)


sio = None


def handlers(server):
    global sio
    sio = server
    server.on("__subscribe__", subscribe)
    server.on("__unsubscribe__", unsubscribe)
    server.on("message", message)


async def subscribe(sid, channel):
    await sio.enter_room(sid, channel)
    return True


async def unsubscribe(sid, channel):
    await sio.leave_room(sid, channel)
    return True


async def message(sid, data):
    await sio.emit("message", data, room=data["ch"], skip_sid=sid)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", help="redis://HOST:PORT: one server with the other processes on it")
    args = parser.parse_args()
    handlers(make_server(args.redis))
    app = web.Application()
    sio.attach(app)
    uvloop.install()
    print(f"reference: listening on 127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
