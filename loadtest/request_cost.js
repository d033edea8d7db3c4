// Request cost: one of three request kinds at a fixed arrival rate (open model), for
// loadtest/run-request-cost.sh and .ci/bench-smoke.sh.
//
// k6 run -e KIND=healthz|me|feed -e BASE_URL=http://127.0.0.1:18090 -e TOKENS=/path/tokens.json \
//        -e RATE=300 -e DURATION=20s loadtest/request_cost.js
//
// KIND=me and KIND=feed are home_feed.js itself (VARIANT=me: `{ me { id username } }`,
// VARIANT=full: the 20-post home feed), with its Zipf user choice, its body checks and its
// `feed_ok` rate; the caller sets VARIANT accordingly. KIND=healthz is `GET /healthz`, checked
// for status 200 and `{"status":"ok"}`, counted in `healthz_ok`. Thresholds only record
// pass/fail; the driver decides what fails.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import homeFeed, { options as homeFeedOptions } from './home_feed.js';

const KIND = __ENV.KIND || 'feed';
const EXPECTED_VARIANT = { me: 'me', feed: 'full' };
if (KIND !== 'healthz' && (__ENV.VARIANT || 'full') !== EXPECTED_VARIANT[KIND]) {
  throw new Error(`KIND=${KIND} needs VARIANT=${EXPECTED_VARIANT[KIND]} (unknown kind or wrong variant)`);
}
const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:18090';
const healthzOk = new Rate('healthz_ok');

const healthzThresholds = {
  http_req_failed: ['rate<0.001'],
  healthz_ok: ['rate>0.999'],
  dropped_iterations: ['count<1'],
};
export const options =
  KIND === 'healthz' ? { ...homeFeedOptions, thresholds: healthzThresholds } : homeFeedOptions;

function healthz() {
  const res = http.get(`${BASE_URL}/healthz`, { tags: { name: 'healthz' }, timeout: '10s' });
  let status = null;
  try {
    status = res.json('status');
  } catch (_) {
    status = null;
  }
  healthzOk.add(
    check(res, {
      'status 200': (r) => r.status === 200,
      'status ok': () => status === 'ok',
    }),
  );
}

export default function () {
  if (KIND === 'healthz') healthz();
  else homeFeed();
}
