// Notification list, first page (first: 20, with actors { username }, actorCount and
// post { id }), plus the unread count, open model (constant arrival rate).
//
// k6 run -e BASE_URL=http://127.0.0.1:18080 -e TOKENS=/path/tokens.json -e RATE=200 \
//        -e DURATION=30s loadtest/notifications.js
//
// TOKENS is the tokens.json written by `nova-bench seed`; users are picked Zipf-skewed
// (s = ZIPF_S, default 1.1) over the file order. Every response is validated: HTTP 200, no
// GraphQL `errors`, at most 20 edges, each with at least one actor and actorCount >= 1.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { SharedArray } from 'k6/data';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:18080';
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '30s';
const PRE_VUS = parseInt(__ENV.PRE_VUS || '50', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '400', 10);
const ZIPF_S = parseFloat(__ENV.ZIPF_S || '1.1');
// benchmarks.md P9: notifications list p99 <= 10 ms.
const P99_MS = parseFloat(__ENV.P99_MS || '10');

if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(BASE_URL)) {
  throw new Error(`BASE_URL must be a loopback address, got ${BASE_URL}`);
}

const listOk = new Rate('notifications_ok');
const nonEmpty = new Rate('notifications_non_empty');

const users = new SharedArray('users', () => JSON.parse(open(__ENV.TOKENS || 'tokens.json')).users);

const cdf = (() => {
  const out = new Float64Array(users.length);
  let total = 0;
  for (let i = 0; i < users.length; i++) {
    total += 1 / Math.pow(i + 1, ZIPF_S);
    out[i] = total;
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
})();

function pickUser() {
  const x = Math.random();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return users[lo];
}

const BODY = JSON.stringify({
  query: `query Notifications($first: Int) {
  unreadNotificationCount
  notifications(first: $first) {
    edges { cursor node { id type actorCount read updatedAt actors { username } post { id } } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  variables: { first: 20 },
});

export const options = {
  discardResponseBodies: false,
  scenarios: {
    notifications: {
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
    notifications_ok: ['rate>0.999'],
    dropped_iterations: ['count<1'],
  },
};

export default function () {
  const user = pickUser();
  const res = http.post(`${BASE_URL}/graphql`, BODY, {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${user.token}` },
    tags: { name: 'notifications' },
    timeout: '10s',
  });
  let parsed = null;
  try {
    parsed = res.json();
  } catch (_) {
    parsed = null;
  }
  const edges =
    parsed && parsed.data && parsed.data.notifications ? parsed.data.notifications.edges : null;
  const ok = check(res, {
    'status 200': (r) => r.status === 200,
    'no errors': () => parsed !== null && !parsed.errors,
    'at most 20 edges': () => edges !== null && edges.length <= 20,
    'actors present': () =>
      edges !== null && edges.every((e) => e.node.actors.length >= 1 && e.node.actorCount >= 1),
  });
  listOk.add(ok);
  nonEmpty.add(edges !== null && edges.length > 0);
}
