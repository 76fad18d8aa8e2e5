/**
 * The SAM template, the CDK stack and the function must not drift apart.
 *
 * functions/on-upload/environment.json is the function's own statement of its
 * contract (its unit tests check it against the code): binary name,
 * environment variables with defaults, and event wiring. This suite checks
 * both templates against it, and the two templates against each other: the
 * same parameters with the same defaults and constraints, and, for several
 * parameter sets, the same resources with the same properties (compared in a
 * canonical form where logical IDs are replaced by roles such as
 * "SourceBucket" or "Queue").
 */
import * as path from 'node:path';
import { getManifest } from 'cargo-lambda-cdk/lib/cargo';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, PARAMETER_SPECS } from '../lib/parameters';
import { VISIBILITY_TIMEOUT_FACTOR } from '../lib/queue-worker';
import { ON_UPLOAD_BINARY, ON_UPLOAD_ENVIRONMENT, ON_UPLOAD_MANIFEST } from '../lib/stack';
import {
  canonicalModel,
  evaluateSam,
  type Json,
  loadEnvironmentJson,
  loadSamTemplate,
  SAM_TEMPLATE_PATH,
  synthCdk,
} from './cfn';

const contract = loadEnvironmentJson();
const sam = loadSamTemplate();
const samFunctions = Object.entries<Json>(sam.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function');

/** Parameter sets both tools are compared under (SAM parameter names and values). */
const PARAMETER_SETS: Record<string, Record<string, string | number>> = {
  defaults: {},
  'single bucket, filters, alarm email': {
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    SourceSuffix: '.jpg',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
  },
  'x86_64, slow variants, reserved concurrency, existing topic': {
    Architecture: 'x86_64',
    MemorySize: 4096,
    Timeout: 300,
    ReservedConcurrency: '25',
    BatchSize: 1,
    MaximumConcurrency: 25,
    MaxReceiveCount: 3,
    LogLevel: 'DEBUG',
    LogRetentionDays: 90,
    NoncurrentVersionDays: 7,
    QueueAgeAlarmSeconds: 3600,
    BucketNamePrefix: 'photos',
    OutputPrefix: 'v1/',
    SourcePrefix: 'in/',
    VariantsConfig: 'variant = [{ name = "thumb", width = 256, formats = ["webp"] }]',
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
  },
};

describe('environment.json (the function contract)', () => {
  it('names the on-upload function and binary', () => {
    expect(contract.function).toBe('on-upload');
    expect(contract.binary).toBe(ON_UPLOAD_BINARY);
  });

  it('SAM builds that binary with cargo-lambda for provided.al2023, in the workspace holding the crate', () => {
    expect(samFunctions).toHaveLength(1);
    const [, fn] = samFunctions[0];
    expect(fn.Metadata).toEqual({ BuildMethod: 'rust-cargolambda', BuildProperties: { Binary: contract.binary } });
    expect(fn.Properties.Runtime).toBe('provided.al2023');
    expect(fn.Properties.Handler).toBe('bootstrap');
    // CodeUri is a Cargo workspace with the function crate as a member, so
    // `cargo lambda build --bin on-upload` run there finds the binary.
    const codeUri = path.resolve(path.dirname(SAM_TEMPLATE_PATH), fn.Properties.CodeUri);
    const workspace = getManifest(path.join(codeUri, 'Cargo.toml')).workspace;
    expect(workspace?.members).toContain(path.relative(codeUri, path.dirname(ON_UPLOAD_MANIFEST)));
  });

  it('CDK builds that binary from the function crate', () => {
    const manifest = getManifest(ON_UPLOAD_MANIFEST);
    expect(manifest.package?.name).toBe(contract.function);
    expect(manifest.bin?.map((bin) => bin.name)).toContain(contract.binary);
  });

  it('the CDK stack sets exactly the variables the function reads', () => {
    expect([...ON_UPLOAD_ENVIRONMENT].sort()).toEqual(contract.variables.map((v: Json) => v.name).sort());
  });

  describe.each(Object.entries(PARAMETER_SETS))('with %s', (_, parameters) => {
    const samModel = canonicalModel(evaluateSam(sam, parameters));
    const cdkModel = canonicalModel(synthCdk(parameters).toJSON());

    for (const [tool, model] of [
      ['SAM', samModel],
      ['CDK', cdkModel],
    ] as const) {
      it(`${tool}: environment variables match the contract`, () => {
        const vars = model.resources.Function.Environment.Variables;
        expect(Object.keys(vars).sort()).toEqual(contract.variables.map((v: Json) => v.name).sort());
        for (const v of contract.variables) {
          if (v.required) {
            // Required variables are wired to a resource, never left to a default.
            expect(vars[v.name], v.name).toMatch(/^\$\{(SourceBucket|OutputBucket)\}$/);
          }
        }
        const single = parameters.BucketMode === 'single';
        expect(vars.MEDIAFLOW_OUTPUT_BUCKET).toBe(single ? '${SourceBucket}' : '${OutputBucket}');
      });

      it(`${tool}: optional variables default to the contract's defaults`, () => {
        const vars = model.resources.Function.Environment.Variables;
        // The parameter each optional variable is set from.
        const parameterOf: Record<string, string> = {
          MEDIAFLOW_OUTPUT_PREFIX: 'OutputPrefix',
          MEDIAFLOW_CONFIG: 'VariantsConfig',
        };
        const optional = contract.variables.filter((v: Json) => !v.required);
        expect(optional.map((v: Json) => v.name).sort()).toEqual(Object.keys(parameterOf).sort());
        for (const v of optional) {
          const parameter = parameterOf[v.name];
          // The SAM parameter and the CDK context value default to the function's own default ...
          expect(DEFAULTS[parameter], parameter).toBe(v.default);
          expect(sam.Parameters[parameter].Default, parameter).toBe(v.default);
          // ... and the template passes the parameter through unchanged.
          expect(vars[v.name], v.name).toBe(String(parameters[parameter] ?? v.default));
        }
      });

      it(`${tool}: event wiring matches the contract`, () => {
        expect(contract.event_wiring.source).toBe('sqs');
        const esm = model.resources.EventSourceMapping;
        expect(esm.EventSourceArn).toBe('${Queue.Arn}');
        expect(esm.FunctionName).toBe('${Function}');
        expect(esm.FunctionResponseTypes).toEqual(contract.event_wiring.function_response_types);
        const notifications = model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations;
        expect(notifications.map((n: Json) => n.Event)).toEqual(contract.event_wiring.s3_events);
        for (const n of notifications) expect(n.Queue).toBe('${Queue.Arn}');
      });

      it(`${tool}: visibility timeout is at least 6x the function timeout`, () => {
        expect(model.resources.Queue.VisibilityTimeout).toBeGreaterThanOrEqual(
          VISIBILITY_TIMEOUT_FACTOR * model.resources.Function.Timeout,
        );
      });
    }

    it('SAM and CDK make the same resources with the same properties', () => {
      expect(Object.keys(cdkModel.resources).sort()).toEqual(Object.keys(samModel.resources).sort());
      for (const name of Object.keys(samModel.resources)) {
        expect(cdkModel.resources[name], name).toEqual(samModel.resources[name]);
      }
    });

    it('SAM and CDK have the same outputs', () => {
      expect(cdkModel.outputs).toEqual(samModel.outputs);
    });
  });
});

describe('parameters', () => {
  it('SAM and CDK have the same parameters', () => {
    expect(Object.keys(sam.Parameters).sort()).toEqual(Object.keys(PARAMETER_SPECS).sort());
    expect(Object.keys(DEFAULTS).sort()).toEqual(Object.keys(PARAMETER_SPECS).sort());
  });

  it.each(Object.keys(PARAMETER_SPECS))('%s has the same default and constraints', (name) => {
    const p = sam.Parameters[name];
    const spec = PARAMETER_SPECS[name];
    expect(p.Default, 'Default').toEqual(DEFAULTS[name]);
    switch (spec.kind) {
      case 'enum':
        expect(p.AllowedValues).toEqual(spec.values);
        expect(p.Type).toBe(spec.number ? 'Number' : 'String');
        break;
      case 'number':
        expect(p.Type).toBe('Number');
        expect(p.MinValue).toBe(spec.min);
        expect(p.MaxValue).toBe(spec.max);
        break;
      case 'string':
        expect(p.Type).toBe('String');
        expect(p.AllowedValues).toBeUndefined();
        expect(p.AllowedPattern).toBe(spec.pattern);
        expect(p.MaxLength).toBe(spec.maxLength);
        break;
    }
  });

  it('defaults: arm64, 2048 MB, 60 s, batches of 4, at most 10 at once, 5 receives', () => {
    expect(DEFAULTS).toMatchObject({
      Architecture: 'arm64',
      MemorySize: 2048,
      Timeout: 60,
      BatchSize: 4,
      MaximumConcurrency: 10,
      MaxReceiveCount: 5,
    });
  });

  it('SAM maps every allowed timeout to a visibility timeout of exactly 6x', () => {
    const timeouts: number[] = sam.Parameters.Timeout.AllowedValues;
    expect(Object.keys(sam.Mappings.VisibilityTimeout).map(Number).sort((a, b) => a - b)).toEqual(
      [...timeouts].sort((a, b) => a - b),
    );
    for (const timeout of timeouts) {
      const model = canonicalModel(evaluateSam(sam, { Timeout: timeout }));
      expect(model.resources.Function.Timeout).toBe(timeout);
      expect(model.resources.Queue.VisibilityTimeout).toBe(VISIBILITY_TIMEOUT_FACTOR * timeout);
      // SQS's maximum visibility timeout is 12 hours.
      expect(model.resources.Queue.VisibilityTimeout).toBeLessThanOrEqual(43200);
    }
  });

  it('SAM rejects a single bucket without separate prefixes (Rules), as the CDK app does', () => {
    const rule = sam.Rules.SingleBucketNeedsSeparatePrefixes;
    expect(rule.RuleCondition).toEqual({ 'Fn::Equals': [{ Ref: 'BucketMode' }, 'single'] });
    expect(rule.Assertions.map((a: Json) => a.Assert)).toEqual([
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SourcePrefix' }, ''] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'OutputPrefix' }, ''] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SourcePrefix' }, { Ref: 'OutputPrefix' }] }] },
    ]);
    expect(() => synthCdk({ BucketMode: 'single', OutputPrefix: 'media/' })).toThrow(/SourcePrefix/);
    expect(() => synthCdk({ BucketMode: 'single', SourcePrefix: 'uploads/' })).toThrow(/OutputPrefix/);
    expect(() => synthCdk({ BucketMode: 'single', SourcePrefix: 'a/', OutputPrefix: 'a/' })).toThrow(/overlap/);
  });
});
