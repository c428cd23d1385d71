// Centrifugo clients of the official JavaScript SDK (centrifuge-js 5.8) under Node, driven by
// rtclient/node.py: one JSON config as the only argument, commands as JSON lines on stdin, events as
// JSON lines on stdout.
//
// Config: {
//   "transports": [{"transport": "websocket"|"http_stream"|"sse", "endpoint": absolute URL}, ...]
//                 (centrifuge-js tries them in order until one has ever opened),
//   "emulationEndpoint": absolute URL of /emulation (http_stream and sse send commands there),
//   "cookie": "name=value; ..." (Centrifugo's connect proxy authenticates the Django session),
//   "origin": "https://site" (sent as Origin; Centrifugo checks it on WebSocket),
//   "token": connection JWT or null, "channels": ["rooms:lobby", ...] (client-side subscriptions),
//   "count": clients in this process (default 1), "quiet": true to print no publication events
//   (large counts: ask "stats" instead)
// }
// Node 20 has neither a global WebSocket nor EventSource: `ws` and `eventsource` 4 stand in, each
// wrapped to send the Cookie and Origin headers a browser would (NODE_EXTRA_CA_CERTS trusts the
// site's CA). Node's fetch streams response bodies, which http_stream needs.
//
// Events (every one has "event", the client index "i" where it concerns one client, and "t", the
// wall clock in milliseconds): connecting {code, reason}, connected {transport, client},
// disconnected {code, reason}, error {type, message}, subscribed {channel, recovered, wasRecovering},
// subscribing {channel, code, reason}, unsubscribed {channel, code, reason},
// publication {channel, data, server} (server: a server-side subscription, e.g. the personal channel),
// ready {connected, subscribed} once every client is connected and subscribed to every channel,
// stats {connected, subscribed, publications, reconnects, transports}, closed.
// Commands: {"cmd": "stats"}, {"cmd": "close"} (disconnect every client and exit).
import { Centrifuge } from 'centrifuge';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv[2] || '{}');
const count = config.count || 1;
const channels = config.channels || [];
const headers = {};
if (config.cookie) headers.Cookie = config.cookie;
if (config.origin) headers.Origin = config.origin;

const now = () => performance.timeOrigin + performance.now();
const emit = (event, fields) => process.stdout.write(JSON.stringify({ event, t: now(), ...fields }) + '\n');

function fetchWithHeaders(url, init = {}) {
  const merged = new Headers(init.headers || {});
  for (const [name, value] of Object.entries(headers)) merged.set(name, value);
  return fetch(url, { ...init, headers: merged });
}

class HeaderWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers });
  }
}

class HeaderEventSource extends EventSource {
  constructor(url, init) {
    super(url, { ...init, fetch: fetchWithHeaders });
  }
}

const stats = { connected: 0, subscribed: 0, publications: 0, reconnects: 0, transports: {} };
const clients = [];
let readySent = false;

function checkReady() {
  if (!readySent && stats.connected === count && stats.subscribed === count * channels.length) {
    readySent = true;
    emit('ready', { connected: stats.connected, subscribed: stats.subscribed });
  }
}

for (let i = 0; i < count; i++) {
  const options = {
    websocket: HeaderWebSocket,
    eventsource: HeaderEventSource,
    fetch: fetchWithHeaders,
    readableStream: ReadableStream,
    emulationEndpoint: config.emulationEndpoint,
  };
  if (config.token) options.token = config.token;
  const client = new Centrifuge(config.transports, options);
  let everConnected = false;
  let transport = null;
  client.on('connecting', (ctx) => {
    if (everConnected) stats.reconnects++;
    emit('connecting', { i, code: ctx.code, reason: ctx.reason });
  });
  client.on('connected', (ctx) => {
    everConnected = true;
    transport = ctx.transport;
    stats.connected++;
    stats.transports[transport] = (stats.transports[transport] || 0) + 1;
    emit('connected', { i, transport: ctx.transport, client: ctx.client });
    checkReady();
  });
  client.on('disconnected', (ctx) => emit('disconnected', { i, code: ctx.code, reason: ctx.reason }));
  client.on('error', (ctx) => emit('error', { i, type: ctx.type, message: String(ctx.error && ctx.error.message) }));
  const onState = () => {
    // A reconnect decrements what the previous connection counted.
    if (transport !== null) {
      stats.connected--;
      stats.transports[transport]--;
      transport = null;
    }
  };
  client.on('connecting', onState);
  client.on('disconnected', onState);
  client.on('publication', (ctx) => {
    stats.publications++;
    if (!config.quiet) emit('publication', { i, channel: ctx.channel, data: ctx.data, server: true });
  });
  for (const channel of channels) {
    const sub = client.newSubscription(channel);
    let subscribed = false;
    sub.on('subscribed', (ctx) => {
      if (!subscribed) stats.subscribed++;
      subscribed = true;
      emit('subscribed', { i, channel, recovered: ctx.recovered, wasRecovering: ctx.wasRecovering });
      checkReady();
    });
    sub.on('subscribing', (ctx) => {
      if (subscribed) stats.subscribed--;
      subscribed = false;
      emit('subscribing', { i, channel, code: ctx.code, reason: ctx.reason });
    });
    sub.on('unsubscribed', (ctx) => {
      if (subscribed) stats.subscribed--;
      subscribed = false;
      emit('unsubscribed', { i, channel, code: ctx.code, reason: ctx.reason });
    });
    sub.on('publication', (ctx) => {
      stats.publications++;
      if (!config.quiet) emit('publication', { i, channel, data: ctx.data, server: false });
    });
    sub.subscribe();
  }
  client.connect();
  clients.push(client);
}

function close() {
  for (const client of clients) client.disconnect();
  emit('closed', {});
  // Give the transports a moment to send their close, then leave even if a stream lingers.
  setTimeout(() => process.exit(0), 200).unref();
}

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = JSON.parse(line);
  if (command.cmd === 'stats') emit('stats', stats);
  else if (command.cmd === 'close') close();
  else emit('error', { type: 'command', message: `unknown command ${line}` });
});
commands.on('close', close);
