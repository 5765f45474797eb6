// Runs every server audit of the graphql-http package (the GraphQL-over-HTTP
// specification's compliance suite) against a running api and prints one line per audit.
//
// Usage:
//   node audit.mjs --url http://127.0.0.1:PORT/graphql
//
// Output: one JSON object per line, {"id", "name", "status", "reason"?}, where status is
// "ok", or "notice", "warn" or "error" for the MAY, SHOULD and MUST audits that failed.
// Exit status: 0 when every audit is ok, 1 when one is not, 2 on invalid arguments.

import { parseArgs } from 'node:util';

import { serverAudits } from 'graphql-http';

function parseOptions() {
  const { values } = parseArgs({ options: { url: { type: 'string' } } });
  if (!values.url) {
    console.error('usage: node audit.mjs --url http://127.0.0.1:PORT/graphql');
    process.exit(2);
  }
  return values;
}

async function main() {
  const { url } = parseOptions();
  const results = [];
  // One audit at a time keeps the server's logs in audit order.
  for (const audit of serverAudits({ url })) {
    results.push(await audit.fn());
  }
  let failed = 0;
  for (const result of results) {
    const line = { id: result.id, name: result.name, status: result.status };
    if (result.status !== 'ok') {
      failed += 1;
      line.reason = result.reason;
      line.httpStatus = result.response?.status;
    }
    console.log(JSON.stringify(line));
  }
  console.error(`audits: ${results.length - failed} ok, ${failed} not ok`);
  process.exit(failed === 0 ? 0 : 1);
}

await main();
