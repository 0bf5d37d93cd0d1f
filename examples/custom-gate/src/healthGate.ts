/**
 * A custom gate evaluator: `http:health` waits until a URL answers with an expected status (a
 * service coming up after a deploy). It is the example of docs/gates.md, "writing your own gate
 * evaluator".
 */
import { check } from '@belfry/core';
import type { GateDecision, GateEvaluator, JsonObject } from '@belfry/core/gate';

/** The spec of an `http:health` gate, as `validate` returns it. */
export interface HealthSpec extends JsonObject {
  url: string;
  /** The status that means healthy. */
  status: number;
}

/** Options of {@link httpHealthGate}. */
export interface HealthGateOptions {
  /** How long one probe may take. @defaultValue 2_000 */
  requestTimeoutMs?: number;
}

/** Step 1: check the spec, fill in defaults, return plain JSON (it is stored with the gate). */
function validate(spec: unknown): HealthSpec {
  const s = check.object(spec, 'spec');
  check.keys(s, ['url', 'status'], 'spec');
  let url: URL | undefined;
  try {
    url = new URL(String(s.url));
  } catch {
    url = undefined;
  }
  if (typeof s.url !== 'string' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    check.fail(
      'INVALID_OPTION',
      'spec.url',
      `must be an http(s) URL; got ${check.describe(s.url)}`,
    );
  const status = check.number(s.status, 'spec.status', 200, { integer: true, min: 100, max: 599 });
  return { url: url.href, status };
}

/** Step 2: the evaluator. One probe per distinct URL per evaluation, bounded, abortable. */
export function httpHealthGate(options: HealthGateOptions = {}): GateEvaluator {
  const o = check.object(options, 'options');
  check.keys(o, ['requestTimeoutMs'], 'options');
  const timeoutMs = check.number(o.requestTimeoutMs, 'options.requestTimeoutMs', 2_000, {
    integer: true,
    min: 1,
  });
  return {
    type: 'http:health',
    validate,
    async evaluate(gates, { now, signal }) {
      signal.throwIfAborted();
      // Many gates may wait on one service: probe each URL once.
      const probes = new Map<string, Promise<number | string>>();
      for (const gate of gates) {
        const url = gate.spec.url;
        if (typeof url !== 'string' || probes.has(url)) continue;
        const probe = fetch(url, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        })
          .then(async (res) => {
            await res.body?.cancel();
            return res.status;
          })
          .catch((error: Error) => {
            // The Deacon gave up on this evaluation: reject, do not decide.
            if (signal.aborted) throw signal.reason;
            return error.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : error.message;
          });
        probes.set(url, probe);
      }
      const decisions = new Map<string, GateDecision>();
      for (const gate of gates) {
        const { url, status } = gate.spec as Partial<HealthSpec>;
        if (typeof url !== 'string' || typeof status !== 'number') {
          // A damaged record: this gate alone is escalated, the rest are decided.
          decisions.set(gate.id, {
            kind: 'escalate',
            reason: 'its stored spec has no url or status',
            nextCheckAt: null,
          });
          continue;
        }
        const seen = await (probes.get(url) as Promise<number | string>);
        decisions.set(
          gate.id,
          seen === status
            ? { kind: 'close', result: { url, status: seen, healthyAt: now } }
            : { kind: 'pending', memo: { lastSeen: seen } },
        );
      }
      return decisions;
    },
  };
}
