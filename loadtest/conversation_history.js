// Benchmark B3: a conversation's history, first page (messages first: 50, with sender
// { username }), open model (constant arrival rate).
//
// k6 run -e BASE_URL=http://127.0.0.1:18080 -e CONVERSATIONS=/path/conversations.json \
//        -e RATE=200 -e DURATION=30s loadtest/conversation_history.js
//
// CONVERSATIONS is the conversations.json written by loadtest/seed_conversations.py: per
// conversation one member's token, its id and message count. Conversations are picked
// uniformly. Every response is validated: HTTP 200, no GraphQL `errors`, min(50, count) edges.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { SharedArray } from 'k6/data';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:18080';
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '30s';
const PRE_VUS = parseInt(__ENV.PRE_VUS || '50', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '400', 10);
const P99_MS = parseFloat(__ENV.P99_MS || '20');
const PAGE = 50;

if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(BASE_URL)) {
  throw new Error(`BASE_URL must be a loopback address, got ${BASE_URL}`);
}

const historyOk = new Rate('history_ok');
const conversations = new SharedArray('conversations', () =>
  JSON.parse(open(__ENV.CONVERSATIONS || 'conversations.json')).conversations);

const QUERY = `query History($id: ID!, $first: Int) {
  conversation(id: $id) {
    messages(first: $first) {
      edges { cursor node { id body createdAt editedAt deletedAt sender { username } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

export const options = {
  scenarios: {
    history: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max', 'count'],
  thresholds: {
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
    http_req_duration: [`p(99)<${P99_MS}`],
    history_ok: ['rate>0.999'],
    dropped_iterations: ['count<1'],
  },
};

export default function () {
  const c = conversations[Math.floor(Math.random() * conversations.length)];
  const res = http.post(
    `${BASE_URL}/graphql`,
    JSON.stringify({ query: QUERY, variables: { id: c.id, first: PAGE } }),
    {
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${c.token}` },
      tags: { name: 'history' },
      timeout: '10s',
    },
  );
  let parsed = null;
  try {
    parsed = res.json();
  } catch (_) {
    parsed = null;
  }
  const edges =
    parsed && parsed.data && parsed.data.conversation
      ? parsed.data.conversation.messages.edges
      : null;
  historyOk.add(
    check(res, {
      'status 200': (r) => r.status === 200,
      'no errors': () => parsed !== null && !parsed.errors,
      'expected edge count': () => edges !== null && edges.length === Math.min(PAGE, c.messages),
      'senders present': () => edges !== null && edges.every((e) => e.node.sender.username),
    }),
  );
}
