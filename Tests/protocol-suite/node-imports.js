// What the official socket.io-protocol test suite imports under Node: a WebSocket (Debian's
// node-ws) and the few `chai` assertions it uses, so that it runs with Debian's mocha alone
// (chai is not packaged). Written for this repository; the suite itself is not in it.
import { WebSocket } from "ws";
import { isDeepStrictEqual } from "node:util";

function expect(actual) {
  const fail = (message) => { throw new Error(message); };
  const plain = (v) => (v instanceof ArrayBuffer || Buffer.isBuffer(v) ? Buffer.from(v) : v);
  const api = {
    eql(expected) {
      const a = plain(actual), e = plain(expected);
      const same = Buffer.isBuffer(a) && Buffer.isBuffer(e) ? a.equals(e) : isDeepStrictEqual(a, e);
      if (!same) fail(`expected ${JSON.stringify(actual)} to eql ${JSON.stringify(expected)}`);
    },
    a(type) {
      const t = Array.isArray(actual) ? "array" : typeof actual;
      if (t !== type) fail(`expected a ${type}, got ${t}`);
    },
    startsWith(prefix) {
      if (!String(actual).startsWith(prefix)) fail(`expected ${actual} to start with ${prefix}`);
    },
    keys(...keys) {
      const got = Object.keys(actual).sort(), wanted = keys.flat().sort();
      if (!isDeepStrictEqual(got, wanted)) fail(`keys ${got} are not ${wanted}`);
    },
  };
  api.to = api.be = api.have = api.all = api;
  return api;
}

globalThis.WebSocket = WebSocket;
globalThis.chai = { expect };
