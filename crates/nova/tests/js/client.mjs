// Subscribes with the standard graphql-transport-ws client (graphql-ws) and prints one JSON
// line per event on stdout: {"event":"connected"}, {"event":"next","data":...},
// {"event":"closed","code":...}, {"event":"error",...}. Exits after `count` next items or when
// the socket closes. Usage: node client.mjs <ws url> <token> <count> <query>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, countArg, query] = process.argv.slice(2);
const count = Number(countArg);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => print({ event: 'connected' }),
    closed: (e) => {
      print({ event: 'closed', code: e.code, reason: e.reason });
      process.exit(0);
    },
  },
});

let seen = 0;
client.subscribe(
  { query },
  {
    next: (data) => {
      print({ event: 'next', data });
      seen += 1;
      if (seen >= count) {
        client.dispose();
        process.exit(0);
      }
    },
    error: (err) => {
      print({ event: 'error', error: err && err.code ? { code: err.code, reason: err.reason } : String(err) });
    },
    complete: () => print({ event: 'complete' }),
  },
);
setTimeout(() => {
  print({ event: 'timeout' });
  process.exit(2);
}, 20000);
