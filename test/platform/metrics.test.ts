import { expect } from 'chai';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi, clientCredentialsToken } from '../support/oauth.ts';
import { login } from '../support/users.ts';

describe('Prometheus metrics (METRICS_PORT)', () => {
  let server: TestServer;
  let metricsUrl: string;
  let close: () => void;

  before(async () => {
    server = await startTestServer();
    const listener = await server.deps.metrics.serve(0);
    metricsUrl = `http://127.0.0.1:${(listener.address() as { port: number }).port}/metrics`;
    close = () => listener.close();
  });
  after(async () => {
    close();
    await server.close();
  });

  it('counts requests by route template, tokens by grant, sign-in failures, and reports the pool and event loop', async () => {
    const { access_token: token } = await clientCredentialsToken(server);
    await callApi(server, '/me', token);
    await login(server, { email: 'nobody@example.com', password: 'not-a-password' });
    const body = await (await fetch(metricsUrl)).text();
    expect(body).to.match(/latchkey_http_requests_total\{method="GET",route="\/api\/v1\/me",status="200"\} 1/);
    expect(body).to.match(/latchkey_http_requests_total\{method="POST",route="\/oauth\/token",status="200"\} 1/);
    expect(body).to.match(/latchkey_tokens_issued_total\{grant_type="client_credentials"\} 1/);
    expect(body).to.match(/latchkey_sign_in_failures_total\{via="password_grant"\} 1/);
    expect(body).to.match(/latchkey_db_pool_connections \d+/);
    expect(body).to.include('latchkey_nodejs_eventloop_lag_seconds');
    expect(body).to.include('latchkey_http_request_duration_seconds_bucket');
  });

  it('answers nothing but GET /metrics', async () => {
    expect((await fetch(metricsUrl.replace('/metrics', '/'))).status).to.equal(404);
  });
});
