import { oneOf } from '../internal/validate';
import { toFrozenJson } from '../store/json';
import type { JsonValue } from '../store/Store';
import { limited } from './Convoys';
import { type Ctx, checkName, checkText } from './env';
import type { Report, Severity } from './types';

const COLLECTION = 'reports';
const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

/** Input of {@link Reports.file}. */
export interface FileReportInput {
  /** What makes two reports the same incident, e.g. `gate-timeout:gt-abc`. */
  incidentKey: string;
  severity: Severity;
  title: string;
  details?: JsonValue;
  /** Who reports it, e.g. `deacon`. */
  source: string;
}

/**
 * Reports for the Mayor, deduplicated per incident: while a report with the same incident key is
 * open, filing again counts it (and raises its severity if higher) instead of adding another.
 * Resolving the incident lets the next report open a new one.
 */
export class Reports {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Files a report; `created` says whether it is a new incident (the one to alert a person about). */
  async file(input: FileReportInput): Promise<{ report: Report; created: boolean }> {
    const incidentKey = checkText(input?.incidentKey, 'report.incidentKey', 300);
    const severity = oneOf(input.severity, SEVERITIES, 'report.severity', 'info');
    const title = checkText(input.title, 'report.title', 500);
    const source = checkName(input.source, 'report.source');
    const details =
      input.details === undefined ? undefined : toFrozenJson(input.details, 'report.details');
    return this.ctx.run(async (tx) => {
      const now = this.ctx.now();
      const open = (await tx.find<Report>(COLLECTION, 'openByKey', { prefix: [incidentKey] }))[0];
      if (open) {
        const louder =
          SEVERITIES.indexOf(severity) > SEVERITIES.indexOf(open.severity)
            ? severity
            : open.severity;
        // The latest title and details describe the incident; details given before are kept
        // when a repeat brings none.
        const next: Report = {
          ...open,
          severity: louder,
          title,
          ...(details === undefined ? {} : { details }),
          lastAt: now,
          count: open.count + 1,
        };
        await tx.update(COLLECTION, next);
        return { report: next, created: false };
      }
      const report: Report = {
        id: this.ctx.env.newId('rp'),
        incidentKey,
        severity,
        title,
        ...(details === undefined ? {} : { details }),
        source,
        status: 'open',
        firstAt: now,
        lastAt: now,
        count: 1,
      };
      await tx.insert(COLLECTION, report);
      return { report, created: true };
    });
  }

  /** Open reports, least recently reported first. */
  async open(options: { limit?: number } = {}): Promise<Report[]> {
    return this.ctx.run((tx) => tx.find<Report>(COLLECTION, 'open', limited(options)));
  }

  /** The open report of an incident, or undefined. */
  async byIncident(incidentKey: string): Promise<Report | undefined> {
    return this.ctx.run(
      async (tx) => (await tx.find<Report>(COLLECTION, 'openByKey', { prefix: [incidentKey] }))[0],
    );
  }

  /** The report, or undefined. */
  async get(id: string): Promise<Report | undefined> {
    return this.ctx.run((tx) => tx.get<Report>(COLLECTION, id));
  }

  /** Resolves an incident's open report; returns it, or undefined when none was open. */
  async resolve(incidentKey: string): Promise<Report | undefined> {
    return this.ctx.run(async (tx) => {
      const open = (await tx.find<Report>(COLLECTION, 'openByKey', { prefix: [incidentKey] }))[0];
      if (!open) return undefined;
      const next: Report = { ...open, status: 'resolved', resolvedAt: this.ctx.now() };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
