// Loads the api's GraphiQL page in headless Chromium, runs one operation the way a user
// would, and checks that the result pane shows the expected text.
//
// Usage:
//   node graphiql-check.mjs --url http://127.0.0.1:PORT/graphql --query '{ greeting }' \
//     --expect 'hello' [--token SECRET] [--step-timeout-ms 30000]
//
// With --token, the headers editor gets {"Authorization": "Bearer SECRET"} before the
// operation runs, and the check fails if the token ends up in localStorage. The check
// also fails as soon as the page makes a request to a host other than 127.0.0.1, logs a
// console error, throws an uncaught error, or has a request fail or get an HTTP error
// status. --step-timeout-ms limits each browser step (launch, load, each wait), not the
// whole run.
// Exit status: 0 on success, 1 when a check fails, 2 on invalid arguments.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Fails every host lookup but 127.0.0.1's, so a request that slipped past the route
  // check below could still not reach another host.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];
const ALLOWED_HOST = '127.0.0.1';

const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const RESPONSE_EDITOR = '.graphiql-response .CodeMirror';
const EDITOR_TOOLS = '.graphiql-editor-tools';
const VISIBLE_TOOL_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
const EXECUTE_BUTTON = '.graphiql-execute-button';

class CheckFailed extends Error {}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      query: { type: 'string' },
      expect: { type: 'string' },
      'step-timeout-ms': { type: 'string', default: '30000' },
    },
  });
  const missing = ['url', 'query', 'expect'].filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    throw new TypeError(`missing required option(s): ${missing.map((n) => `--${n}`).join(', ')}`);
  }
  const stepTimeoutMs = Number(values['step-timeout-ms']);
  if (!Number.isInteger(stepTimeoutMs) || stepTimeoutMs <= 0) {
    const value = values['step-timeout-ms'];
    throw new TypeError(`--step-timeout-ms must be a positive integer, got ${value}`);
  }
  if (!isAllowed(values.url)) {
    throw new TypeError(`--url must point at ${ALLOWED_HOST}, got ${values.url}`);
  }
  return { ...values, stepTimeoutMs };
}

// Returns whether the page may load `url`: data: and blob: URLs never touch the network.
function isAllowed(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:') {
    return true;
  }
  return parsed.hostname === ALLOWED_HOST;
}

// Problems the page reported, with a promise that rejects at the first one so that a
// wait can end early instead of running into its timeout.
class ProblemLog {
  constructor() {
    this.entries = [];
    this.firstProblem = new Promise((resolve) => {
      this.reportFirst = resolve;
    });
  }

  add(entry) {
    this.entries.push(entry);
    this.reportFirst();
  }

  // Resolves with `promise`, or rejects when the page reports a problem first.
  async race(promise) {
    const failure = this.firstProblem.then(() => {
      throw new CheckFailed('the page reported a problem');
    });
    return Promise.race([promise, failure]);
  }

  throwIfAny() {
    if (this.entries.length > 0) {
      throw new CheckFailed(`the page reported ${this.entries.length} problem(s)`);
    }
  }
}

// Routes every problem the page reports into `problems`.
function watchPage(context, page, problems) {
  context.route('**/*', (route) => {
    const url = route.request().url();
    if (isAllowed(url)) {
      return route.continue();
    }
    problems.add(`blocked request to another host: ${url}`);
    return route.abort('blockedbyclient');
  });
  page.on('websocket', (socket) => {
    if (!isAllowed(socket.url())) {
      problems.add(`WebSocket to another host: ${socket.url()}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.add(`console error: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => {
    problems.add(`uncaught page error: ${error.message}`);
  });
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText ?? 'unknown error';
    problems.add(`request failed: ${request.method()} ${request.url()} (${reason})`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      const request = response.request();
      problems.add(`HTTP ${response.status()} for ${request.method()} ${response.url()}`);
    }
  });
}

// Replaces the content of the CodeMirror editor under `selector` as typed input, then
// reads it back so that auto-closed brackets or other edits cannot pass unnoticed.
async function typeIntoEditor(page, selector, text) {
  const editor = page.locator(selector).first();
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);

  const content = await editor.evaluate((element) => element.CodeMirror.getValue());
  if (content !== text) {
    throw new CheckFailed(`editor ${selector} contains ${JSON.stringify(content)} after typing`);
  }
}

// GraphiQL 3.9 parses the query editor's text 100 ms after the last change and stores the
// document on the CodeMirror instance. Its fetcher picks HTTP or WebSocket from that
// document, so running earlier would send a new subscription over HTTP.
async function waitForParsedQuery(page, query) {
  await page.waitForFunction(
    ({ selector, text }) => {
      const editor = document.querySelector(selector)?.CodeMirror;
      return editor?.documentAST?.loc?.source.body === text;
    },
    { selector: QUERY_EDITOR, text: query },
  );
}

async function setBearerToken(page, token) {
  await page.locator(`${EDITOR_TOOLS} button`, { hasText: 'Headers' }).click();
  const headers = JSON.stringify({ Authorization: `Bearer ${token}` });
  await typeIntoEditor(page, VISIBLE_TOOL_EDITOR, headers);
}

// Fails when the page saved the bearer token in localStorage, where it outlives the tab.
async function checkTokenNotStored(page, token) {
  const keys = await page.evaluate((secret) => {
    return Object.keys(localStorage).filter((key) => localStorage.getItem(key).includes(secret));
  }, token);
  if (keys.length > 0) {
    throw new CheckFailed(`the bearer token was saved in localStorage under ${keys.join(', ')}`);
  }
}

async function readResult(page) {
  return page
    .locator(RESPONSE_EDITOR)
    .first()
    .evaluate((element) => element.CodeMirror.getValue());
}

async function runCheck(options, page, problems) {
  await problems.race(page.goto(options.url, { waitUntil: 'load' }));
  await problems.race(page.locator(QUERY_EDITOR).first().waitFor({ state: 'visible' }));

  if (options.token !== undefined) {
    await setBearerToken(page, options.token);
  }
  await typeIntoEditor(page, QUERY_EDITOR, options.query);
  await waitForParsedQuery(page, options.query);
  await page.locator(EXECUTE_BUTTON).click();

  // The wait ends when the expected text appears, or when the operation has finished
  // (the run button is back to "Execute") and left a result without it.
  let outcome;
  try {
    const finished = page.waitForFunction(
      ({ resultSelector, buttonSelector, expected }) => {
        const result = document.querySelector(resultSelector)?.CodeMirror.getValue() ?? '';
        if (result.includes(expected)) {
          return 'found';
        }
        const label = document.querySelector(buttonSelector)?.getAttribute('aria-label') ?? '';
        return result !== '' && label.startsWith('Execute') ? 'finished' : false;
      },
      { resultSelector: RESPONSE_EDITOR, buttonSelector: EXECUTE_BUTTON, expected: options.expect },
    );
    outcome = await (await problems.race(finished)).jsonValue();
  } catch (error) {
    if (error instanceof CheckFailed) {
      throw error;
    }
    outcome = `timed out: ${error.message}`;
  }
  if (outcome !== 'found') {
    const result = await readResult(page).catch(() => '<result pane not found>');
    throw new CheckFailed(
      `result pane did not show ${JSON.stringify(options.expect)} (${outcome})\n` +
        `result pane:\n${result}`,
    );
  }
  if (options.token !== undefined) {
    await checkTokenNotStored(page, options.token);
  }
  problems.throwIfAny();
}

async function main() {
  let options;
  try {
    options = parseOptions();
  } catch (error) {
    console.error(`graphiql-check: ${error.message}`);
    return 2;
  }

  const userDataDir = await mkdtemp(join(tmpdir(), 'graphiql-check-'));
  const problems = new ProblemLog();
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: options.stepTimeoutMs,
    });
    context.setDefaultTimeout(options.stepTimeoutMs);
    const page = context.pages()[0] ?? (await context.newPage());
    watchPage(context, page, problems);

    await runCheck(options, page, problems);
    console.log(`graphiql-check: result pane shows ${JSON.stringify(options.expect)}`);
    return 0;
  } catch (error) {
    const detail = error instanceof CheckFailed ? error.message : error.stack;
    console.error(`graphiql-check: failed on ${options.url}\n${detail}`);
    if (problems.entries.length > 0) {
      console.error(`problems seen on the page:\n${problems.entries.join('\n')}`);
    }
    return 1;
  } finally {
    await context?.close();
    await rm(userDataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
