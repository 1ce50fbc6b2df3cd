// Drives @stomp/stompjs 7 (over the `ws` package) through one scenario and prints JSON lines.
//
//     node driver.mjs ws://host:port/path SCENARIO '{"version": "1.2", "destination": "/topic/x"}'
//
// Every line is {"event": NAME, ...}. The last line is {"event": "done"} when the scenario ran to
// its end, or {"event": "fail", "reason": ...} / {"event": "timeout"} when it did not (exit 1/3).
// Waits are on the client's own callbacks (receipts, messages), bounded by `timeout_ms`.

import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';

const [url, scenario, paramsJson] = process.argv.slice(2);
const params = JSON.parse(paramsJson || '{}');
const started = Date.now();

function out(event, data = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
}

const deadline = setTimeout(() => {
  out('timeout', { after_ms: Date.now() - started });
  process.exit(3);
}, params.timeout_ms ?? 15000);

function toHex(bytes) {
  return Buffer.from(bytes).toString('hex');
}

// A stompjs Client on `url` plus what the WebSocket underneath saw.
function makeClient(options = {}) {
  const versions = new Versions(options.versions ?? [params.version ?? '1.2']);
  const state = {
    protocol: null,
    lastKind: null,
    kinds: [],
    closes: [],
    errors: [],
    closing: false,
  };
  const client = new Client({
    webSocketFactory: () => {
      const ws = new WebSocket(url, versions.protocolVersions());
      ws.on('open', () => {
        state.protocol = ws.protocol;
      });
      // Registered before stompjs sets onmessage, so it runs first for each WebSocket message.
      ws.on('message', (data, isBinary) => {
        const head = Buffer.from(data).subarray(0, 12).toString('latin1').split('\n')[0];
        state.lastKind = isBinary ? 'binary' : 'text';
        state.kinds.push({ kind: state.lastKind, command: head });
      });
      return ws;
    },
    stompVersions: versions,
    reconnectDelay: 0,
    heartbeatIncoming: options.heartbeatIncoming ?? 0,
    heartbeatOutgoing: options.heartbeatOutgoing ?? 0,
    connectHeaders: options.connectHeaders ?? {},
    debug: () => {},
  });
  client.onStompError = frame => {
    state.errors.push(frame.headers);
    out('stomp-error', { headers: frame.headers, body: frame.body });
  };
  client.onWebSocketClose = evt => {
    state.closes.push(evt.code);
    if (!state.closing) {
      out('fail', { reason: `the connection closed: code ${evt.code} ${evt.reason}`, code: evt.code });
      process.exit(1);
    }
  };
  return { client, state };
}

function connect(c) {
  return new Promise((resolve, reject) => {
    c.client.onConnect = frame => resolve(frame);
    c.client.onWebSocketError = () => reject(new Error('WebSocket error before CONNECTED'));
    c.client.activate();
  });
}

// Resolves with the RECEIPT frame; register before sending the frame that asks for it.
function receipt(c, id) {
  return new Promise(resolve => c.client.watchForReceipt(id, frame => resolve(frame)));
}

async function disconnect(c) {
  let receiptId = null;
  c.state.closing = true;
  c.client.onDisconnect = frame => {
    receiptId = frame.headers['receipt-id'];
  };
  await c.client.deactivate();
  out('disconnected', { receipt: receiptId, close_codes: c.state.closes });
}

// A queue of messages for one subscription, read with `next()`.
function inbox() {
  const waiting = [];
  const ready = [];
  return {
    push(m) {
      const w = waiting.shift();
      if (w) w(m);
      else ready.push(m);
    },
    next() {
      return ready.length ? Promise.resolve(ready.shift()) : new Promise(r => waiting.push(r));
    },
  };
}

function describe(m, c) {
  return {
    headers: m.headers,
    body: m.body,
    hex: toHex(m.binaryBody),
    ws_kind: c.state.lastKind,
  };
}

async function subscribe(c, destination, headers, box) {
  const r = receipt(c, `sub-${destination}`);
  const sub = c.client.subscribe(destination, m => box.push(describe(m, c)), {
    ...headers,
    receipt: `sub-${destination}`,
  });
  await r;
  return sub;
}

const scenarios = {
  // CONNECT, SUBSCRIBE, SEND, MESSAGE, DISCONNECT over the version in params.version.
  async pubsub() {
    const c = makeClient();
    const connected = await connect(c);
    out('connected', { headers: connected.headers, protocol: c.state.protocol });
    const box = inbox();
    await subscribe(c, params.destination, { id: 'sub-1' }, box);
    const sent = receipt(c, 'send-1');
    c.client.publish({
      destination: params.destination,
      body: params.body,
      headers: { 'content-type': 'text/plain', 'x-conformance': 'js', receipt: 'send-1' },
    });
    await sent;
    out('message', await box.next());
    await disconnect(c);
  },

  // Heart-beats both ways for params.duration_ms, then a round trip to show the link is alive.
  async heartbeat() {
    const c = makeClient({
      heartbeatIncoming: params.incoming,
      heartbeatOutgoing: params.outgoing,
    });
    const beats = [];
    let lost = 0;
    c.client.onHeartbeatReceived = () => beats.push(Date.now() - started);
    c.client.onHeartbeatLost = () => {
      lost += 1;
    };
    const connected = await connect(c);
    const t0 = Date.now() - started;
    out('connected', { headers: connected.headers, at_ms: t0 });
    await new Promise(r => setTimeout(r, params.duration_ms));
    const box = inbox();
    await subscribe(c, params.destination, { id: 'hb' }, box);
    c.client.publish({ destination: params.destination, body: 'still here' });
    const m = await box.next();
    out('heartbeats', {
      beats: beats.map(b => b - t0),
      lost,
      alive: m.body === 'still here',
      close_codes: c.state.closes,
    });
    await disconnect(c);
  },

  // A RECEIPT for SUBSCRIBE, SEND and UNSUBSCRIBE, then one for DISCONNECT.
  async receipts() {
    const c = makeClient();
    await connect(c);
    const ids = [];
    c.client.onUnhandledReceipt = frame => ids.push(`unexpected:${frame.headers['receipt-id']}`);
    const box = inbox();
    await subscribe(c, params.destination, { id: 'r-sub' }, box);
    ids.push(`sub-${params.destination}`);
    const sent = receipt(c, 'r-send');
    c.client.publish({ destination: params.destination, body: 'x', headers: { receipt: 'r-send' } });
    ids.push((await sent).headers['receipt-id']);
    await box.next();
    const unsub = receipt(c, 'r-unsub');
    c.client.unsubscribe('r-sub', { receipt: 'r-unsub' });
    ids.push((await unsub).headers['receipt-id']);
    out('receipts', { ids });
    await disconnect(c);
  },

  // A binary body (not UTF-8) and a UTF-8 text body, each sent and received.
  async binary() {
    const c = makeClient();
    await connect(c);
    const box = inbox();
    await subscribe(c, params.destination, { id: 'bin' }, box);
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    c.client.publish({
      destination: params.destination,
      binaryBody: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    out('binary', await box.next());
    c.client.publish({
      destination: params.destination,
      body: 'h\u00e9llo \u2713',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
    out('text', await box.next());
    await disconnect(c);
  },

  // client-individual on a queue: ack m1 and m3, nack m2, get m2 again (redelivered), ack it.
  // Acks go through stompjs' own IMessage.ack/nack, which pick the headers for the version.
  async queue_ack() {
    const c = makeClient();
    await connect(c);
    const box = inbox();
    const subscribed = receipt(c, 'sub-q');
    c.client.subscribe(params.destination, m => box.push(m), {
      id: 'q',
      ack: 'client-individual',
      receipt: 'sub-q',
    });
    await subscribed;
    for (const body of ['m1', 'm2', 'm3']) {
      const sent = receipt(c, `send-${body}`);
      c.client.publish({
        destination: params.destination,
        body,
        headers: { receipt: `send-${body}` },
      });
      await sent;
    }
    const byBody = {};
    const delivered = [];
    while (delivered.length < 3) {
      const m = await box.next();
      delivered.push({ headers: m.headers, body: m.body });
      byBody[m.body] = m;
    }
    out('delivered', { messages: delivered });
    const acked = receipt(c, 'ack-m3');
    byBody.m1.ack();
    byBody.m2.nack();
    byBody.m3.ack({ receipt: 'ack-m3' });
    await acked;
    const again = await box.next();
    out('redelivered', { headers: again.headers, body: again.body });
    const last = receipt(c, 'ack-last');
    again.ack({ receipt: 'ack-last' });
    await last;
    await disconnect(c);
  },
};

async function main() {
  const run = scenarios[scenario];
  if (!run) {
    out('fail', { reason: `unknown scenario ${scenario}` });
    process.exit(1);
  }
  try {
    await run();
    out('done', { after_ms: Date.now() - started });
    clearTimeout(deadline);
    process.exit(0);
  } catch (err) {
    out('fail', { reason: String(err && err.stack ? err.stack : err) });
    process.exit(1);
  }
}

main();
