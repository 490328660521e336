"""A raw Engine.IO/Socket.IO WebSocket load for the reload tests: many clients in one asyncio
loop, each sending `ping` events with acks and recording which version answered."""
import asyncio
import itertools
import json
import time

import aiohttp


class PingClient:
    """`slow_every`: every n-th event is ["slow", ms] instead of a ping; `sending`: an Event that
    must be set for the client to send (clear it to hold every client)."""

    def __init__(self, url, rate, slow_every=0, slow_ms=0, sending=None):
        self.url = url
        self.interval = 1.0 / rate
        self.slow_every = slow_every
        self.slow_ms = slow_ms
        self.sending = sending
        self.sent = {}          # seq -> send time
        self.answers = []       # (seq, version, send time, receive time, count or None)
        self.disconnected = False
        self.connected = asyncio.Event()

    async def run(self, session, stop, seqs):
        async with session.ws_connect(self.url, heartbeat=None) as ws:
            await ws.receive()                      # open packet
            await ws.send_str("40")
            await ws.receive()                      # 40{"sid":...}
            self.connected.set()
            reader = asyncio.create_task(self._read(ws))
            ack_ids = itertools.count()
            while not stop.is_set() and not self.disconnected:
                if self.sending is not None and not self.sending.is_set():
                    await asyncio.sleep(0.01)
                    continue
                seq = next(seqs)
                self.sent[seq] = time.monotonic()
                ack_id = next(ack_ids)
                if self.slow_every and ack_id % self.slow_every == self.slow_every - 1:
                    await ws.send_str(f'42{ack_id}["slow",{self.slow_ms},{seq}]')
                else:
                    await ws.send_str(f'42{ack_id}["ping",{seq}]')
                await asyncio.sleep(self.interval)
            # Let the last answers arrive.
            deadline = time.monotonic() + 5
            while len(self.answers) < len(self.sent) and time.monotonic() < deadline and not self.disconnected:
                await asyncio.sleep(0.05)
            reader.cancel()

    async def _read(self, ws):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = message.data
            if data == "2":
                await ws.send_str("3")
            elif data.startswith("43"):
                answer = json.loads(data[data.index("["):])
                seq = int(answer[1])
                count = answer[2] if len(answer) > 2 else None
                self.answers.append((seq, answer[0], self.sent.get(seq), time.monotonic(), count))
        self.disconnected = True


async def run_load(port, clients, rate, during, make=None):
    """Runs `clients` clients at `rate` events/s each while `during(started)` runs; returns them.
    `make(url, rate)` builds each client (default: a PingClient)."""
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    stop = asyncio.Event()
    seqs = itertools.count()
    pingers = [(make or PingClient)(url, rate) for _ in range(clients)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(p.run(session, stop, seqs)) for p in pingers]
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in pingers)), 30)
        started = time.monotonic()
        await during(started)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return pingers


def ack_ids(ws, count):
    """A raw WebSocket client's next `count` acknowledgement ids (answering pings meanwhile)."""
    acks = []
    while len(acks) < count:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
        elif frame.startswith("43"):
            acks.append(int(frame[2:frame.index("[")]))
    return acks
