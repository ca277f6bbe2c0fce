// An example partner test in Node.js (18 or newer): node:test and fetch, nothing to install.
// Each test makes a sandbox project of its own on a shared mock, so files and tests run in
// parallel safely:
//
//   CRAFTKIT_MOCK_URL=http://127.0.0.1:4010 node --test examples/node/
import { test } from "node:test";
import assert from "node:assert/strict";

const BASE = (process.env.CRAFTKIT_MOCK_URL ?? "http://127.0.0.1:4010").replace(/\/$/, "");
// Sent to a mock that requires a token for its control API (one listening beyond loopback).
const CONTROL_TOKEN = process.env.CRAFTKIT_MOCK_CONTROL_TOKEN;

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

// A sandbox: a project, its key and a succeeded render; deleted when the test ends.
async function sandbox(t) {
  const project = await control("POST", "/projects", { name: t.name });
  const scoped = (method, path, body) =>
    control(method, `/projects/${project.projectId}${path}`, body);
  const render = await scoped("POST", "/renders", {});
  t.after(() => control("DELETE", `/projects/${project.projectId}`));
  const api = (method, path, body) =>
    fetch(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${project.apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return { renderId: render.id, api, control: scoped };
}

test("a link stops working at its expiry, on the sandbox's own clock", async (t) => {
  const box = await sandbox(t);
  const { now } = await box.control("GET", "/clock");
  const expiresAt = new Date(Date.parse(now) + 30 * 60 * 1000).toISOString();
  const created = await box.api("POST", `/v1/renders/${box.renderId}/shares`, { expiresAt });
  assert.equal(created.status, 201);
  const share = await created.json();
  assert.equal((await fetch(share.shareUrl)).status, 200);
  await box.control("POST", "/clock", { advanceSeconds: 31 * 60 });
  assert.equal((await fetch(share.shareUrl)).status, 404);
});

test("an email lands in the sandbox's own outbox", async (t) => {
  const box = await sandbox(t);
  const sent = await box.api("POST", `/v1/renders/${box.renderId}/email`, {
    to: "client@example.com",
  });
  assert.equal(sent.status, 201);
  const { emails } = await box.control("GET", "/emails");
  assert.deepEqual(
    emails.map((mail) => mail.to),
    ["client@example.com"],
  );
});

test("a provider rejection is a 502 for this sandbox only", async (t) => {
  const box = await sandbox(t);
  const other = await sandbox(t);
  await box.control("PUT", "/faults", { emailSendFails: true });
  const body = { to: "client@example.com" };
  const rejected = await box.api("POST", `/v1/renders/${box.renderId}/email`, body);
  assert.equal(rejected.status, 502);
  assert.equal((await rejected.json()).error.code, "email_send_failed");
  const sent = await other.api("POST", `/v1/renders/${other.renderId}/email`, body);
  assert.equal(sent.status, 201);
});
