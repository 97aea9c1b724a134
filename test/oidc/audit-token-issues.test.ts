import { expect } from 'chai';

import { startTestServer } from '../support/harness.ts';
import { clientCredentialsToken } from '../support/oauth.ts';

describe('AUDIT_TOKEN_ISSUES', () => {
  for (const enabled of [true, false]) {
    it(`${enabled ? 'writes' : 'does not write'} an audit row per machine token issue when ${enabled}`, async () => {
      const server = await startTestServer({ AUDIT_TOKEN_ISSUES: String(enabled) });
      try {
        await clientCredentialsToken(server);
        const rows = await server.deps.orm.em.getConnection().execute(`select actor_client_id, actor_id, details from audit_log where action = 'token.issue'`);
        if (!enabled) {
          expect(rows).to.have.length(0);
          return;
        }
        expect(rows).to.have.length(1);
        expect(rows[0]).to.deep.include({ actor_client_id: server.admin.clientId, actor_id: server.admin.userId });
        expect(rows[0]!.details).to.deep.equal({ grant_type: 'client_credentials' });
      } finally {
        await server.close();
      }
    });
  }
});
