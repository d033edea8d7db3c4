// Home feed, first page (first: 20, with author { username } and likeCount), open model.
//
// k6 run -e BASE_URL=http://127.0.0.1:18080 -e TOKENS=/path/tokens.json -e RATE=500 \
//        -e DURATION=60s loadtest/home_feed.js
//
// VARIANT=next: each iteration fetches the first page, then the second page with
// `after: endCursor` (tagged name=homeFeedNext, its own http_req_duration submetric); the
// arrival rate then counts iterations, i.e. 2 requests each.
//
// TOKENS is the tokens.json written by `nova-bench seed`. Users are picked Zipf-skewed
// (s = ZIPF_S, default 1.1) over the file order, which is unrelated to the dataset's own
// popularity ranks. Every response is validated: HTTP 200, no GraphQL `errors`, and exactly the
// number of edges the seeder computed for that user (20, or fewer for a short feed).
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Rate } from 'k6/metrics';
import { SharedArray } from 'k6/data';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:18080';
const RATE = parseInt(__ENV.RATE || '500', 10);
const DURATION = __ENV.DURATION || '60s';
const PRE_VUS = parseInt(__ENV.PRE_VUS || '50', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '400', 10);
const ZIPF_S = parseFloat(__ENV.ZIPF_S || '1.1');
// Latency target checked as a threshold (benchmarks.md P13: SQLite feed p99 <= 5 ms at 500 req/s).
const P99_MS = parseFloat(__ENV.P99_MS || '5');

if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(BASE_URL)) {
  throw new Error(`BASE_URL must be a loopback address, got ${BASE_URL}`);
}

// 1 when a response passed every check, 0 otherwise: its complement is the error rate.
const feedOk = new Rate('feed_ok');

// One copy for all VUs (dataset M has 100k users: a per-VU copy would not fit in memory).
const users = new SharedArray('users', () => JSON.parse(open(__ENV.TOKENS || 'tokens.json')).users);

// Cumulative Zipf weights over ranks 1..N.
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

// VARIANT=full (the benchmark) | ids (feed without author and likeCount) | me (no feed at all):
// the two diagnostics split the cost between the feed query, the per-page lookups and the
// fixed per-request overhead.
const VARIANT = __ENV.VARIANT || 'full';
const FULL = `query HomeFeed($first: Int, $after: String) {
  homeFeed(first: $first, after: $after) {
    edges { cursor node { id body createdAt likeCount author { username } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const QUERIES = {
  full: FULL,
  next: FULL,
  ids: `query HomeFeed($first: Int) {
  homeFeed(first: $first) { edges { node { id } } }
}`,
  me: `query Me { me { id username } }`,
};
if (!QUERIES[VARIANT]) throw new Error(`unknown VARIANT ${VARIANT}`);
const BODY = JSON.stringify({
  query: QUERIES[VARIANT],
  variables: VARIANT === 'me' ? {} : { first: 20 },
});

export const options = {
  discardResponseBodies: false,
  scenarios: {
    home_feed: {
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
    // Recorded as pass/fail; the driver reports them but keeps going.
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
    http_req_duration: [`p(99)<${P99_MS}`],
    feed_ok: ['rate>0.999'],
    dropped_iterations: ['count<1'],
  },
};
if (VARIANT === 'next') {
  // Declared so that --summary-export includes the per-page submetrics.
  options.thresholds['http_req_duration{name:homeFeed}'] = [`p(99)<${P99_MS}`];
  options.thresholds['http_req_duration{name:homeFeedNext}'] = [`p(99)<${P99_MS}`];
}

function checkFeed(res, parsed, expected) {
  const edges =
    parsed && parsed.data && parsed.data.homeFeed ? parsed.data.homeFeed.edges : null;
  return check(res, {
    'status 200': (r) => r.status === 200,
    'no errors': () => parsed !== null && !parsed.errors,
    'expected edge count': () => edges !== null && edges.length === expected,
    'authors present': () =>
      VARIANT === 'ids' ||
      (edges !== null && edges.every((e) => e.node.author && e.node.author.username)),
  });
}

function post(user, body, name) {
  const res = http.post(`${BASE_URL}/graphql`, body, {
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${user.token}`,
    },
    tags: { name },
    timeout: '10s',
  });
  let parsed = null;
  try {
    parsed = res.json();
  } catch (_) {
    parsed = null;
  }
  return [res, parsed];
}

export default function () {
  const user = pickUser();
  const [res, parsed] = post(user, BODY, 'homeFeed');
  const ok =
    VARIANT === 'me'
      ? check(res, {
          'status 200': (r) => r.status === 200,
          'no errors': () => parsed !== null && !parsed.errors,
          'me is the user': () =>
            parsed !== null && !!parsed.data && parsed.data.me.username === user.username,
        })
      : checkFeed(res, parsed, user.expected_first_page);
  feedOk.add(ok);
  if (exec.scenario.iterationInTest === 0 && !ok) {
    console.warn(`first response: ${res.status} ${res.body}`);
  }
  if (VARIANT !== 'next' || !ok || !parsed.data.homeFeed.pageInfo.hasNextPage) return;
  const body = JSON.stringify({
    query: FULL,
    variables: { first: 20, after: parsed.data.homeFeed.pageInfo.endCursor },
  });
  const [res2, parsed2] = post(user, body, 'homeFeedNext');
  feedOk.add(checkFeed(res2, parsed2, user.expected_second_page));
}
