// Verifies webhook deliveries with the official Standard Webhooks library and prints one
// JSON line per delivery: {"ok": true, "payload": ...} or {"ok": false, "error": "..."}.
//
// Usage: node verify.mjs '<request as JSON>'
// The request holds: secret (the whsec_ secret) and deliveries, each with headers (an
// object of header names and values) and body (the raw body as sent).

import { Webhook } from 'standardwebhooks';

const request = JSON.parse(process.argv[2]);
// The library accepts the secret as returned, with or without its whsec_ prefix.
const webhook = new Webhook(request.secret);
for (const delivery of request.deliveries) {
  try {
    const payload = webhook.verify(delivery.body, delivery.headers);
    process.stdout.write(`${JSON.stringify({ ok: true, payload })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error.message ?? error) })}\n`);
  }
}
