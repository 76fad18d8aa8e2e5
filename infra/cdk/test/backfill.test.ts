/**
 * The backfill at scale's message body, from the state machine definition to
 * the Rust parser.
 *
 * The Distributed Map builds each SQS message body with States.Format from an
 * S3 Inventory row. No AWS runs here, so this suite takes the MessageBody
 * template out of the synthesized definition, renders it for a sample
 * inventory item with a small States.Format emulator (rules below), and
 * compares the JSON with crates/pipeline/tests/events/backfill-distributed-map.json,
 * which crates/pipeline/tests/backfill_event.rs parses with
 * mediaflow_pipeline::parse_body. MEDIAFLOW_UPDATE_FIXTURES=1 writes the
 * fixture instead (then commit it, and run the Rust test).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MESSAGE_BODY_FORMAT } from '../lib/backfill';
import { evaluateSam, type Json, loadSamTemplate, REPO_ROOT, synthCdk } from './cfn';

const FIXTURE_PATH = path.join(REPO_ROOT, 'crates', 'pipeline', 'tests', 'events', 'backfill-distributed-map.json');

/**
 * One row of an S3 Inventory report as the Distributed Map's ItemReader
 * (InputType MANIFEST) gives it: the report's fields by name, as strings, the
 * key URL-encoded as the CSV has it (S3 events carry form-encoded keys, and
 * the parser decodes `+` and `%XX`).
 */
const SAMPLE_ITEM = {
  Bucket: 'uploads',
  Key: 'photos/my+photo+%281%29+%C3%A9.jpg',
  Size: '245761',
  ETag: 'fbc768f7e4814d35ac47c24765218529',
};

/**
 * A States.Format emulator, for the calls the backfill's definition makes.
 *
 * - The call is `States.Format('<template>', arg, ...)`: a single-quoted
 *   string literal, then one argument per placeholder.
 * - In the literal, a backslash escapes the next character, which must be
 *   one of ' { } \ (the ASL's escapable characters); an unescaped `{}` is a
 *   placeholder; any other unescaped `{`, `}` or `'` is an error.
 * - An argument is a path: `$$.` (the context object) or `$.` (the state's
 *   input) followed by dot-separated field names, or a quoted literal; a path
 *   must reach a string or number, which is inserted as its text.
 * - The inserted text is not escaped in any way (States.Format does not know
 *   the result is JSON): a value with `"` or `\` would break the message.
 *   Inventory keys are URL-encoded, so they have neither; bucket names and
 *   ETags never do.
 * - The number of placeholders must equal the number of arguments.
 */
function statesFormat(call: string, context: Json, input: Json = {}): string {
  const match = /^States\.Format\('((?:[^'\\]|\\.)*)'((?:\s*,\s*[^,]+)*)\)$/s.exec(call);
  if (!match) throw new Error(`not a States.Format call with a string literal: ${call}`);
  const [, literal, rest] = match;
  const args = rest
    .split(',')
    .slice(1)
    .map((a) => a.trim());
  const parts: string[] = [''];
  for (let i = 0; i < literal.length; i++) {
    const c = literal[i];
    if (c === '\\') {
      const next = literal[++i];
      if (!["'", '{', '}', '\\'].includes(next)) throw new Error(`bad escape \\${next} at ${i}`);
      parts[parts.length - 1] += next;
    } else if (c === '{' && literal[i + 1] === '}') {
      parts.push('');
      i++;
    } else if (c === '{' || c === '}' || c === "'") {
      throw new Error(`unescaped ${c} at ${i} in ${literal}`);
    } else {
      parts[parts.length - 1] += c;
    }
  }
  if (parts.length - 1 !== args.length) {
    throw new Error(`${parts.length - 1} placeholders for ${args.length} arguments`);
  }
  const resolve = (arg: string): string => {
    const quoted = /^'((?:[^'\\]|\\.)*)'$/.exec(arg);
    if (quoted) return quoted[1].replace(/\\(.)/g, '$1');
    const path = /^(\$\$?)((?:\.\w+)+)$/.exec(arg);
    if (!path) throw new Error(`unsupported argument ${arg}`);
    let value: Json = path[1] === '$$' ? context : input;
    for (const field of path[2].slice(1).split('.')) {
      if (value === null || typeof value !== 'object' || !(field in value)) throw new Error(`no ${arg}`);
      value = value[field];
    }
    if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`${arg} is not a string or number`);
    return String(value);
  };
  return parts.reduce((out, part, i) => out + (i === 0 ? '' : resolve(args[i - 1])) + part, '');
}

/** The Distributed Map's ItemSelector in a template (SAM evaluated, or CDK synthesized). */
function itemSelector(template: Json): Json {
  const machines = Object.values<Json>(template.Resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  expect(machines).toHaveLength(1);
  return machines[0].Properties.Definition.States.Backfill.ItemSelector;
}

describe('States.Format emulator', () => {
  it('unescapes the literal and fills the placeholders in order', () => {
    expect(statesFormat(String.raw`States.Format('\{"a":"{}","b":[{}]\} it\'s \\', $.x, $$.y.z)`, { y: { z: 7 } }, { x: 'X' })).toBe(
      '{"a":"X","b":[7]} it\'s \\',
    );
    expect(statesFormat("States.Format('{}', 'lit')", {})).toBe('lit');
  });

  it('refuses what States.Format refuses', () => {
    expect(() => statesFormat("States.Format('{\"a\":{}}', $.x)", {}, { x: 1 })).toThrow(/unescaped/);
    expect(() => statesFormat("States.Format('{} {}', $.x)", {}, { x: 1 })).toThrow(/2 placeholders for 1/);
    expect(() => statesFormat("States.Format('{}', $.missing)", {}, {})).toThrow(/no \$\.missing/);
    expect(() => statesFormat(String.raw`States.Format('\n{}', $.x)`, {}, { x: 1 })).toThrow(/bad escape/);
  });
});

describe('backfill message body', () => {
  const cdk = synthCdk({ BackfillAtScale: 'true' }).toJSON();
  const sam = evaluateSam(loadSamTemplate(), { BackfillAtScale: 'true' });

  it('SAM and CDK build the same MessageBody (and entry Id) template', () => {
    expect(itemSelector(sam)).toStrictEqual(itemSelector(cdk));
    expect(itemSelector(cdk)['MessageBody.$']).toBe(MESSAGE_BODY_FORMAT);
  });

  it('renders, for an inventory row, the S3 event in the committed fixture', () => {
    const selector = itemSelector(cdk);
    const context = { Map: { Item: { Index: 41, Value: SAMPLE_ITEM } } };
    // Every entry of a SendMessageBatch: an Id unique in the batch, and the body.
    expect(statesFormat(selector['Id.$'], context)).toBe('41');
    const body = statesFormat(selector['MessageBody.$'], context);
    const event = JSON.parse(body);
    expect(event).toStrictEqual({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: {
            s3SchemaVersion: '1.0',
            configurationId: 'mediaflow-backfill',
            bucket: { name: SAMPLE_ITEM.Bucket },
            // As the report has it: the parser decodes it.
            object: { key: SAMPLE_ITEM.Key, eTag: SAMPLE_ITEM.ETag },
          },
        },
      ],
    });

    const rendered = `${JSON.stringify(event, null, 2)}\n`;
    if (process.env.MEDIAFLOW_UPDATE_FIXTURES === '1') {
      writeFileSync(FIXTURE_PATH, rendered);
    } else if (!existsSync(FIXTURE_PATH)) {
      throw new Error(`${FIXTURE_PATH} is missing: run with MEDIAFLOW_UPDATE_FIXTURES=1 to write it`);
    }
    expect(readFileSync(FIXTURE_PATH, 'utf8'), 'the fixture (MEDIAFLOW_UPDATE_FIXTURES=1 rewrites it)').toBe(rendered);
  });
});
