// Drives autobahn-js (over the `ws` package) through one scenario and prints JSON lines.
//
//     node driver.mjs ws://host:port/path SCENARIO '{"serializer": "json", "realm": "realm1", ...}'
//
// Every line is {"event": NAME, ...}. The last line is {"event": "done"} when the scenario ran to
// its end, or {"event": "fail", "reason": ...} / {"event": "timeout"} when it did not (exit 1/3).
// Scenarios that a Python peer drives print {"event": "ready"} once their subscription or
// registration is in place. Bytes are printed as {"$hex": "..."}. Waits are on autobahn's own
// promises and callbacks, bounded by `timeout_ms`.

import { WebSocket as WsWebSocket } from 'ws';

// autobahn-js 26 uses the global WebSocket, which node has only from version 22 on.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = WsWebSocket;
}
const { default: autobahn } = await import('autobahn');

const [url, scenario, paramsJson] = process.argv.slice(2);
const params = JSON.parse(paramsJson || '{}');
const started = Date.now();

function plain(value) {
  if (value instanceof Uint8Array) {
    return { $hex: Buffer.from(value).toString('hex') };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function out(event, data = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...plain(data) })}\n`);
}

const deadline = setTimeout(() => {
  out('timeout', { after_ms: Date.now() - started });
  process.exit(3);
}, params.timeout_ms ?? 15000);

function serializer(name) {
  return name === 'msgpack'
    ? new autobahn.serializer.MsgpackSerializer()
    : new autobahn.serializer.JSONSerializer();
}

// Resolves with {connection, session, details} once joined; rejects with the close reason.
function join(options = {}) {
  const name = options.serializer ?? params.serializer ?? 'json';
  const connection = new autobahn.Connection({
    url,
    realm: options.realm ?? params.realm,
    protocols: [`wamp.2.${name}`],
    serializers: [serializer(name)],
    max_retries: 0,
    retry_if_unreachable: false,
    authmethods: options.authmethods,
    authid: options.authid,
    onchallenge: options.onchallenge,
  });
  return new Promise((resolve, reject) => {
    let opened = false;
    connection.onopen = (session, details) => {
      opened = true;
      resolve({ connection, session, details });
    };
    connection.onclose = (reason, details) => {
      if (!opened) reject(new Error(`not joined: ${reason} ${JSON.stringify(details)}`));
      else if (connection.closing !== true) out('closed', { reason, details });
      return true; // no reconnection
    };
    connection.open();
  });
}

function close(c) {
  c.connection.closing = true;
  c.connection.close();
}

// A queue of whatever a handler got, read with `next()`.
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

function errorOf(e) {
  return { error: e.error, args: e.args, kwargs: e.kwargs };
}

const scenarios = {
  // Subscribe, publish to itself (exclude_me false, acknowledged), get the event back.
  async pubsub() {
    const c = await join();
    out('joined', { session: c.session.id, protocol: c.connection.transport.info.protocol });
    const box = inbox();
    await c.session.subscribe(params.topic, (args, kwargs, details) =>
      box.push({ args, kwargs, publication: details.publication }),
    );
    const pub = await c.session.publish(params.topic, [1, 'two', { x: [true] }], { k: 'v' }, {
      acknowledge: true,
      exclude_me: false,
    });
    out('published', { id: pub.id });
    out('event', await box.next());
    close(c);
  },

  // Register echo and a failing procedure, call both and an unknown one.
  async rpc() {
    const c = await join();
    await c.session.register(params.procedure, (args, kwargs) => new autobahn.Result(args, kwargs));
    await c.session.register(`${params.procedure}.fail`, () => {
      throw new autobahn.Error('com.conf.error.js', [1, 'two'], { a: { b: 3 } });
    });
    const res = await c.session.call(params.procedure, [1, 'two'], { k: [3] });
    out('result', { args: res.args, kwargs: res.kwargs });
    try {
      await c.session.call(`${params.procedure}.fail`);
      out('fail', { reason: 'the failing procedure succeeded' });
    } catch (e) {
      out('error', errorOf(e));
    }
    try {
      await c.session.call(`${params.procedure}.missing`);
    } catch (e) {
      out('missing', errorOf(e));
    }
    close(c);
  },

  // Progressive call results, both sides in autobahn-js.
  async progress() {
    const c = await join();
    await c.session.register(params.procedure, (args, kwargs, details) => {
      for (let i = 0; i < 3; i++) details.progress([i]);
      return 'done';
    });
    const progress = [];
    const res = await c.session
      .call(params.procedure, [], {}, { receive_progress: true })
      .then(r => r, e => { throw e; }, p => progress.push(p));
    out('result', { result: res, progress });
    close(c);
  },

  // A prefix subscription hears a topic below it, with details.topic.
  async pattern() {
    const c = await join();
    const box = inbox();
    await c.session.subscribe(params.prefix, (args, kwargs, details) =>
      box.push({ args, topic: details.topic }), { match: 'prefix' },
    );
    await c.session.publish(`${params.prefix}.a.b`, ['below'], {}, {
      acknowledge: true,
      exclude_me: false,
    });
    out('event', await box.next());
    close(c);
  },

  // Subscribe, say ready, print `count` events published by someone else.
  async subscriber() {
    const c = await join();
    const box = inbox();
    await c.session.subscribe(params.topic, (args, kwargs, details) =>
      box.push({ args, kwargs, publisher: details.publisher }),
    );
    out('ready', { session: c.session.id });
    for (let i = 0; i < (params.count ?? 1); i++) out('event', await box.next());
    close(c);
  },

  // Register, say ready, serve `count` calls from someone else (echo plus what it was told).
  async callee() {
    const c = await join();
    const box = inbox();
    await c.session.register(params.procedure, (args, kwargs, details) => {
      box.push({ args, caller: details.caller, procedure: details.procedure });
      return new autobahn.Result(args, { js: true, ...kwargs });
    }, params.options ?? {});
    out('ready', { session: c.session.id });
    for (let i = 0; i < (params.count ?? 1); i++) out('invocation', await box.next());
    // The YIELD goes out asynchronously: an acknowledged publish sent after it comes back
    // only once the YIELD is on the wire.
    await c.session.publish(`${params.procedure}.flushed`, [], {}, { acknowledge: true });
    close(c);
  },

  // Publish bytes (a Buffer: MessagePack bin) to a topic someone else listens on.
  async publish_binary() {
    const c = await join();
    const bytes = Buffer.from(params.hex, 'hex');
    await c.session.publish(params.topic, [bytes], {}, { acknowledge: true });
    out('published');
    close(c);
  },

  // Publish with disclose_me to its own subscription.
  async disclose() {
    const c = await join();
    const box = inbox();
    await c.session.subscribe(params.topic, (args, kwargs, details) =>
      box.push({ publisher: details.publisher }),
    );
    await c.session.publish(params.topic, [], {}, {
      acknowledge: true, exclude_me: false, disclose_me: true,
    });
    out('event', { ...(await box.next()), session: c.session.id });
    close(c);
  },

  // WAMP-Ticket or WAMP-CRA authentication.
  async authenticate() {
    const c = await join({
      authmethods: [params.method],
      authid: params.authid,
      onchallenge: (session, method, extra) => {
        if (method === 'ticket') return params.secret;
        let key = params.secret;
        if (extra.salt) key = autobahn.auth_cra.derive_key(key, extra.salt, extra.iterations, extra.keylen);
        return autobahn.auth_cra.sign(key, extra.challenge);
      },
    });
    out('joined', {
      authid: c.details.authid,
      authrole: c.details.authrole,
      authmethod: c.details.authmethod,
    });
    close(c);
  },

  // Join, then leave with GOODBYE: onclose tells the router's reply.
  async leave() {
    const c = await join();
    const closed = new Promise(resolve => {
      c.connection.onclose = (reason, details) => {
        resolve({ reason, details });
        return true;
      };
    });
    c.session.leave('wamp.close.close_realm', 'bye');
    out('closed', await closed);
  },

  // A realm the router does not have.
  async unknown_realm() {
    try {
      const c = await join();
      out('fail', { reason: `joined ${c.details.realm}` });
    } catch (e) {
      out('refused', { reason: String(e.message) });
    }
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
    out('fail', { reason: String(err && err.stack ? err.stack : JSON.stringify(err)) });
    process.exit(1);
  }
}

main();
