import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { TownEvent } from '@belfry/core';
import { assertTrusted } from '../runtime';

/**
 * Reads the daemon's events (`GET /v1/events?after=0`): the ones it still keeps, and with `follow`
 * those to come, each handed to `onEvent` in order. Without `follow` it ends at the last event
 * the daemon had when it answered. With `follow` and `replay: false`, only those to come.
 *
 * @returns `'ended'`, or `'no-daemon'` when nobody answers on the socket.
 * @throws DaemonFilesError when the socket is not one to trust.
 */
export function followEvents(
  socket: string,
  follow: boolean,
  onEvent: (id: number | undefined, event: string, data: unknown) => void,
  options: { replay?: boolean } = {},
): Promise<'ended' | 'no-daemon'> {
  if (!existsSync(socket)) return Promise.resolve('no-daemon');
  try {
    assertTrusted(socket);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve) => {
    let last: number | undefined;
    // From the first event kept, or (replay: false, following only) from now on.
    const path = options.replay === false && follow ? '/v1/events' : '/v1/events?after=0';
    const request = httpRequest({ socketPath: socket, path }, (response) => {
      let buffer = '';
      response.setEncoding('utf8');
      const done = () => {
        request.destroy();
        resolve('ended');
      };
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const field = (name: string) =>
            lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
          const head = /^: belfry events; the last is (\d+)$/.exec(lines[0] ?? '');
          if (head) {
            last = Number(head[1]);
            if (!follow && last === 0) return done();
            continue;
          }
          const event = field('event');
          if (event === undefined) continue;
          const id = field('id') === undefined ? undefined : Number(field('id'));
          let data: unknown;
          try {
            data = JSON.parse(field('data') ?? 'null');
          } catch {
            data = field('data');
          }
          onEvent(id, event, data);
          if (!follow && id !== undefined && last !== undefined && id >= last) return done();
        }
      });
      response.on('end', () => resolve('ended'));
      response.on('error', () => resolve('ended'));
    });
    request.on('error', () => resolve(last === undefined ? 'no-daemon' : 'ended'));
    request.end();
  });
}

/** One line for the log and the foreground run. */
export function describeEvent(e: TownEvent): string {
  const { type, at: _at, ...rest } = e as TownEvent & { at?: number };
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${type}${fields ? ` ${fields}` : ''}`;
}
