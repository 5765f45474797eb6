// Runs one GraphQL operation against the api with a real client library, graphql-ws over
// WebSocket or graphql-sse over Server-Sent Events, and prints one JSON line per result,
// then a last line saying how the operation ended.
//
// Usage: node client.mjs '<request as JSON>'
// The request holds: transport ("ws" or "sse"), url, token (optional), query, variables
// (optional) and take (optional: stop after this many results).

import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';

const request = JSON.parse(process.argv[2]);
const credentials = request.token ? { Authorization: `Bearer ${request.token}` } : {};

function connect() {
  if (request.transport === 'sse') {
    return createSseClient({ url: request.url, headers: credentials, retryAttempts: 0 });
  }
  return createWsClient({
    url: request.url,
    webSocketImpl: WebSocket,
    connectionParams: credentials,
    retryAttempts: 0,
  });
}

function print(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// A close event of the WebSocket, or the errors of an `error` message, or a thrown Error.
function describe(error) {
  if (error && typeof error.code === 'number' && 'reason' in error) {
    return { closeCode: error.code, reason: error.reason };
  }
  if (Array.isArray(error)) {
    return { errors: error };
  }
  return { message: String(error && error.message ? error.message : error) };
}

const client = connect();
let taken = 0;
try {
  const results = client.iterate({ query: request.query, variables: request.variables ?? {} });
  for await (const result of results) {
    print({ result });
    taken += 1;
    if (request.take && taken >= request.take) {
      break;
    }
  }
  print({ end: 'complete' });
} catch (error) {
  print({ end: 'error', ...describe(error) });
} finally {
  await client.dispose();
}
