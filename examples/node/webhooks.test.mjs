// An example webhook receiver in Node.js, tested against the mock's signed deliveries:
// node:http, node:crypto and fetch, nothing to install.
//
//   CRAFTKIT_MOCK_URL=http://127.0.0.1:4010 node --test examples/node/
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

const BASE = (process.env.CRAFTKIT_MOCK_URL ?? "http://127.0.0.1:4010").replace(/\/$/, "");
const CONTROL_TOKEN = process.env.CRAFTKIT_MOCK_CONTROL_TOKEN;
const SECRET = "node-example-secret";

async function control(method, path, body) {
  const response = await fetch(`${BASE}/_mock${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(CONTROL_TOKEN ? { "x-craftkit-control-token": CONTROL_TOKEN } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.status < 400, `${method} /_mock${path}: ${response.status}`);
  return response.status === 204 ? null : response.json();
}

// The partner's check, as the webhook docs give it: HMAC-SHA256 of the raw body, keyed with
// the subscription's secret, lowercase hex, compared in constant time.
function verified(rawBody, signature) {
  const expected = Buffer.from(createHmac("sha256", SECRET).update(rawBody).digest("hex"));
  const given = Buffer.from(String(signature ?? ""));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// A receiver on a free loopback port; `next(event)` resolves with the next such delivery.
async function receiver(t) {
  const waiting = [];
  const received = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      if (!verified(raw, request.headers["x-craftkit-signature"])) {
        response.writeHead(401).end();
        return;
      }
      response.writeHead(200).end();
      const delivery = { headers: request.headers, body: JSON.parse(raw.toString("utf8")) };
      received.push(delivery);
      for (const w of waiting.filter((w) => w.event === delivery.body.event)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(delivery);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const next = (event) => {
    const done = received.find((d) => d.body.event === event);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => waiting.push({ event, resolve }));
  };
  return { url: `http://127.0.0.1:${server.address().port}/webhooks`, next };
}

test("a share created, viewed and revoked arrives as three signed deliveries", async (t) => {
  const project = await control("POST", "/projects", { name: t.name });
  t.after(() => control("DELETE", `/projects/${project.projectId}`));
  const scoped = (method, path, body) =>
    control(method, `/projects/${project.projectId}${path}`, body);
  const render = await scoped("POST", "/renders", {});
  const hooks = await receiver(t);
  await scoped("POST", "/webhooks", {
    url: hooks.url,
    secret: SECRET,
    events: ["document.share_created", "document.viewed", "document.share_revoked"],
  });
  const headers = { authorization: `Bearer ${project.apiKey}`, "content-type": "application/json" };
  const created = await fetch(`${BASE}/v1/renders/${render.id}/shares`, {
    method: "POST", headers, body: "{}",
  });
  const share = await created.json();
  assert.equal((await fetch(share.shareUrl)).status, 200);
  await fetch(`${BASE}/v1/renders/${render.id}/shares/${share.id}`, { method: "DELETE", headers });
  for (const event of ["document.share_created", "document.viewed", "document.share_revoked"]) {
    const delivery = await hooks.next(event);
    assert.equal(delivery.headers["x-craftkit-event"], event);
    assert.equal(delivery.headers["user-agent"], "Craftkit-Webhook/1.0");
    assert.equal(delivery.body.shareId, share.id);
  }
});
