/**
 * The SAM template, the CDK stack and the functions must not drift apart.
 *
 * functions/on-upload/environment.json and functions/transcode/environment.json
 * are the functions' own statements of their contracts (their unit tests check
 * them against the code): binary name, environment variables with defaults, and
 * event wiring, including the key suffixes each function takes. This suite
 * checks both templates against them, and the two templates against each other:
 * the same parameters with the same defaults and constraints, and, for several
 * parameter sets, the same resources with the same properties (compared in a
 * canonical form where logical IDs are replaced by roles such as
 * "SourceBucket", "Queue" or "TranscodeQueue").
 */
import * as path from 'node:path';
import { getManifest } from 'cargo-lambda-cdk/lib/cargo';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, PARAMETER_SPECS } from '../lib/parameters';
import { VISIBILITY_TIMEOUT_FACTOR } from '../lib/queue-worker';
import {
  FFMPEG_PATH,
  ON_UPLOAD_BINARY,
  ON_UPLOAD_ENVIRONMENT,
  ON_UPLOAD_MANIFEST,
  REPO_ROOT,
  TRANSCODE_BINARY,
  TRANSCODE_ENVIRONMENT,
  TRANSCODE_MANIFEST,
} from '../lib/stack';
import {
  canonicalModel,
  evaluateSam,
  type Json,
  loadEnvironmentJson,
  loadSamTemplate,
  SAM_TEMPLATE_PATH,
  sourceBucketDependencies,
  synthCdk,
  TRANSCODE_ENVIRONMENT_JSON_PATH,
} from './cfn';

const sam = loadSamTemplate();
const samFunctions = Object.entries<Json>(sam.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function');

const LAYER = 'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg:3';

/** The two workers: canonical name prefix, contract, and what the CDK app builds. */
const WORKERS = [
  {
    prefix: '',
    contract: loadEnvironmentJson(),
    binary: ON_UPLOAD_BINARY,
    manifest: ON_UPLOAD_MANIFEST,
    environment: ON_UPLOAD_ENVIRONMENT as readonly string[],
    samFunction: 'OnUploadFunction',
  },
  {
    prefix: 'Transcode',
    contract: loadEnvironmentJson(TRANSCODE_ENVIRONMENT_JSON_PATH),
    binary: TRANSCODE_BINARY,
    manifest: TRANSCODE_MANIFEST,
    environment: TRANSCODE_ENVIRONMENT as readonly string[],
    samFunction: 'TranscodeFunction',
  },
] as const;
const [ON_UPLOAD, TRANSCODE] = WORKERS;
const GIF_SUFFIXES: string[] = TRANSCODE.contract.event_wiring.suffixes_when_animated_gif;

/** Parameter sets both tools are compared under (SAM parameter names and values). */
const PARAMETER_SETS: Record<string, Record<string, string | number>> = {
  defaults: {},
  'single bucket, prefixes, alarm email': {
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
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
  'video (ffmpeg layer), otherwise defaults': {
    FfmpegLayerArn: LAYER,
  },
  'video, animated GIFs to video, single bucket, alarm email, transcode sizing': {
    FfmpegLayerArn: LAYER,
    AnimatedGifToVideo: 'true',
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
    TranscodeMemorySize: 10240,
    TranscodeTimeout: 600,
    TranscodeEphemeralStorage: 10240,
    TranscodeBatchSize: 2,
    TranscodeMaximumConcurrency: 2,
  },
  'video x86_64, animated GIFs as stills, existing topic, variants config': {
    FfmpegLayerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:ffmpeg-x86_64:12',
    AnimatedGifToVideo: 'false',
    Architecture: 'x86_64',
    SourcePrefix: 'in/',
    OutputPrefix: 'v1/',
    VariantsConfig: 'variant = [{ name = "thumb", width = 256, formats = ["webp"] }]',
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
    LogLevel: 'DEBUG',
    MaxReceiveCount: 2,
    TranscodeTimeout: 300,
  },
  'AnimatedGifToVideo without a layer (no video; GIFs stay with on-upload)': {
    AnimatedGifToVideo: 'true',
  },
};

/** Whether the transcode worker exists and takes the GIFs, under a parameter set. */
function videoOf(parameters: Record<string, string | number>): { video: boolean; gifToVideo: boolean } {
  const video = String(parameters.FfmpegLayerArn ?? DEFAULTS.FfmpegLayerArn) !== '';
  const gifToVideo = video && String(parameters.AnimatedGifToVideo ?? DEFAULTS.AnimatedGifToVideo) === 'true';
  return { video, gifToVideo };
}

/** The suffixes each worker should be notified for, straight from the contracts. */
function expectedSuffixes(parameters: Record<string, string | number>): Record<string, string[]> {
  const { video, gifToVideo } = videoOf(parameters);
  return {
    '': ON_UPLOAD.contract.event_wiring.suffixes.filter((s: string) => !(gifToVideo && GIF_SUFFIXES.includes(s))),
    Transcode: video ? [...TRANSCODE.contract.event_wiring.suffixes, ...(gifToVideo ? GIF_SUFFIXES : [])] : [],
  };
}

/** S3's rule: two filters for one event type overlap if their prefixes and their suffixes both could match one key. */
function overlaps(a: { prefix: string; suffix: string }, b: { prefix: string; suffix: string }): boolean {
  const prefixes = a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
  const suffixes = a.suffix.endsWith(b.suffix) || b.suffix.endsWith(a.suffix);
  return prefixes && suffixes;
}

function filterOf(configuration: Json): { prefix: string; suffix: string } {
  const rules: Json[] = configuration.Filter?.S3Key?.Rules ?? [];
  for (const rule of rules) expect(['prefix', 'suffix']).toContain(rule.Name);
  expect(rules.filter((r) => r.Name === 'prefix').length).toBeLessThanOrEqual(1);
  expect(rules.filter((r) => r.Name === 'suffix').length).toBeLessThanOrEqual(1);
  return {
    prefix: rules.find((r) => r.Name === 'prefix')?.Value ?? '',
    suffix: rules.find((r) => r.Name === 'suffix')?.Value ?? '',
  };
}

describe('environment.json (the function contracts)', () => {
  it('names the on-upload and transcode functions and binaries', () => {
    expect(ON_UPLOAD.contract.function).toBe('on-upload');
    expect(ON_UPLOAD.contract.binary).toBe(ON_UPLOAD_BINARY);
    expect(TRANSCODE.contract.function).toBe('transcode');
    expect(TRANSCODE.contract.binary).toBe(TRANSCODE_BINARY);
  });

  it('the suffixes are disjoint, in both cases, and none ends with another (S3 would refuse the overlap)', () => {
    const images: string[] = ON_UPLOAD.contract.event_wiring.suffixes;
    const videos: string[] = TRANSCODE.contract.event_wiring.suffixes;
    // .gif/.GIF are on-upload's unless AnimatedGifToVideo sends them to transcode.
    for (const gif of GIF_SUFFIXES) expect(images).toContain(gif);
    const all = [...images, ...videos];
    expect(new Set(all).size).toBe(all.length);
    for (const s of all) {
      expect(s, s).toMatch(/^\.[A-Za-z0-9]+$/);
      // S3 suffix filters are case-sensitive: each extension in lower and upper case.
      expect(all, s).toContain(s.toLowerCase());
      expect(all, s).toContain(s.toUpperCase());
      for (const other of all) if (other !== s) expect(s.endsWith(other), `${s} ends with ${other}`).toBe(false);
    }
  });

  it('both functions are members of the one Cargo workspace (one target/ directory for both builds)', () => {
    const workspace = getManifest(path.join(REPO_ROOT, 'Cargo.toml')).workspace;
    for (const worker of WORKERS) {
      expect(workspace?.members).toContain(path.relative(REPO_ROOT, path.dirname(worker.manifest)));
    }
  });

  describe.each(WORKERS.map((w) => [w.binary, w] as const))('%s', (_, worker) => {
    it('SAM builds that binary with cargo-lambda for provided.al2023, in the workspace holding the crate', () => {
      const found = samFunctions.filter(([, fn]) => fn.Metadata?.BuildProperties?.Binary === worker.contract.binary);
      expect(found.map(([id]) => id)).toEqual([worker.samFunction]);
      const [, fn] = found[0];
      expect(fn.Metadata).toEqual({
        BuildMethod: 'rust-cargolambda',
        BuildProperties: { Binary: worker.contract.binary },
      });
      expect(fn.Properties.Runtime).toBe('provided.al2023');
      expect(fn.Properties.Handler).toBe('bootstrap');
      // CodeUri is the Cargo workspace with the function crate as a member, so
      // `cargo lambda build --bin <binary>` run there finds the binary and
      // every function builds into the workspace's one target/ directory.
      const codeUri = path.resolve(path.dirname(SAM_TEMPLATE_PATH), fn.Properties.CodeUri);
      expect(codeUri).toBe(REPO_ROOT);
      const workspace = getManifest(path.join(codeUri, 'Cargo.toml')).workspace;
      expect(workspace?.members).toContain(path.relative(codeUri, path.dirname(worker.manifest)));
    });

    it('CDK builds that binary from the function crate', () => {
      const manifest = getManifest(worker.manifest);
      expect(manifest.package?.name).toBe(worker.contract.function);
      // Either an explicit [[bin]] or the package's default binary (src/main.rs).
      const bins = manifest.bin?.map((bin) => bin.name) ?? [manifest.package?.name];
      expect(bins).toContain(worker.contract.binary);
    });

    it('the CDK stack sets exactly the variables the function reads', () => {
      expect([...worker.environment].sort()).toEqual(worker.contract.variables.map((v: Json) => v.name).sort());
    });
  });

  it('SAM deploys the transcode function only with an ffmpeg layer, and gives it that layer', () => {
    const fn = sam.Resources.TranscodeFunction;
    expect(fn.Condition).toBe('HasVideo');
    expect(sam.Conditions.HasVideo).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'FfmpegLayerArn' }, ''] }] });
    expect(fn.Properties.Layers).toEqual([{ Ref: 'FfmpegLayerArn' }]);
    for (const [id, r] of Object.entries<Json>(sam.Resources)) {
      if (id.startsWith('Transcode')) expect(r.Condition, id).toBe('HasVideo');
    }
    for (const [id, o] of Object.entries<Json>(sam.Outputs)) {
      if (id.startsWith('Transcode')) expect(o.Condition, id).toBe('HasVideo');
    }
  });

  describe.each(Object.entries(PARAMETER_SETS))('with %s', (_, parameters) => {
    const samModel = canonicalModel(evaluateSam(sam, parameters));
    const cdkTemplate = synthCdk(parameters).toJSON();
    const cdkModel = canonicalModel(cdkTemplate);
    const { video, gifToVideo } = videoOf(parameters);
    const present = video ? WORKERS : [ON_UPLOAD];
    const suffixes = expectedSuffixes(parameters);
    const sourcePrefix = String(parameters.SourcePrefix ?? DEFAULTS.SourcePrefix);

    for (const [tool, model, template] of [
      ['SAM', samModel, evaluateSam(sam, parameters)],
      ['CDK', cdkModel, cdkTemplate],
    ] as const) {
      it(`${tool}: the transcode function and everything it owns exist only with an ffmpeg layer`, () => {
        const transcode = [...Object.keys(model.resources), ...Object.keys(model.outputs)].filter((n) =>
          n.startsWith('Transcode'),
        );
        if (video) {
          expect(transcode).toEqual(
            expect.arrayContaining([
              'TranscodeFunction',
              'TranscodeQueue',
              'TranscodeDeadLetterQueue',
              'TranscodeEventSourceMapping',
              'TranscodeLogGroup',
              'TranscodeRole',
              'TranscodeRoleStatements',
              'TranscodeQueueUrl',
              'TranscodeDeadLetterQueueUrl',
              'TranscodeDeadLetterQueueArn',
              'TranscodeFunctionArn',
              'TranscodeLogGroupName',
            ]),
          );
        } else {
          expect(transcode).toEqual([]);
        }
      });

      for (const worker of present) {
        const name = (role: string) => `${worker.prefix}${role}`;
        const fn = () => model.resources[name('Function')];

        it(`${tool} ${worker.binary}: environment variables match the contract`, () => {
          const vars = fn().Environment.Variables;
          expect(Object.keys(vars).sort()).toEqual(worker.contract.variables.map((v: Json) => v.name).sort());
          for (const v of worker.contract.variables) {
            if (v.required) {
              // Required variables are wired to a resource, never left to a default.
              expect(vars[v.name], v.name).toMatch(/^\$\{(SourceBucket|OutputBucket)\}$/);
            }
          }
          const single = parameters.BucketMode === 'single';
          expect(vars.MEDIAFLOW_OUTPUT_BUCKET).toBe(single ? '${SourceBucket}' : '${OutputBucket}');
        });

        it(`${tool} ${worker.binary}: optional variables default to the contract's defaults`, () => {
          const vars = fn().Environment.Variables;
          // The parameter each optional variable is set from, or its fixed value.
          const parameterOf: Record<string, string> = {
            MEDIAFLOW_OUTPUT_PREFIX: 'OutputPrefix',
            MEDIAFLOW_CONFIG: 'VariantsConfig',
          };
          const fixed: Record<string, string> = {
            // Empty: path-style S3 addressing only with an endpoint override.
            MEDIAFLOW_S3_PATH_STYLE: '',
            ...(worker === TRANSCODE
              ? {
                  // The layer's bin/ffmpeg, extracted to /opt; ffprobe next to it.
                  MEDIAFLOW_FFMPEG: FFMPEG_PATH,
                  MEDIAFLOW_FFPROBE: '',
                  MEDIAFLOW_ANIMATED_GIF: gifToVideo ? 'true' : '',
                }
              : {}),
          };
          const optional = worker.contract.variables.filter((v: Json) => !v.required);
          expect(optional.map((v: Json) => v.name).sort()).toEqual(
            [...Object.keys(parameterOf), ...Object.keys(fixed)].sort(),
          );
          for (const v of optional) {
            if (v.name in fixed) {
              expect(vars[v.name], v.name).toBe(fixed[v.name]);
              if (v.name !== 'MEDIAFLOW_ANIMATED_GIF' || !gifToVideo) expect(vars[v.name], v.name).toBe(v.default);
              continue;
            }
            const parameter = parameterOf[v.name];
            // The SAM parameter and the CDK context value default to the function's own default ...
            expect(DEFAULTS[parameter], parameter).toBe(v.default);
            expect(sam.Parameters[parameter].Default, parameter).toBe(v.default);
            // ... and the template passes the parameter through unchanged.
            expect(vars[v.name], v.name).toBe(String(parameters[parameter] ?? v.default));
          }
        });

        it(`${tool} ${worker.binary}: event wiring matches the contract`, () => {
          expect(worker.contract.event_wiring.source).toBe('sqs');
          const esm = model.resources[name('EventSourceMapping')];
          expect(esm.EventSourceArn).toBe(`\${${name('Queue')}.Arn}`);
          expect(esm.FunctionName).toBe(`\${${name('Function')}}`);
          expect(esm.FunctionResponseTypes).toEqual(worker.contract.event_wiring.function_response_types);
          const notifications = model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations.filter(
            (n: Json) => n.Queue === `\${${name('Queue')}.Arn}`,
          );
          expect([...new Set(notifications.map((n: Json) => n.Event))]).toEqual(worker.contract.event_wiring.s3_events);
          // One notification per suffix, each with SourcePrefix (if any).
          const filters = notifications.map(filterOf);
          expect(filters.map((f: Json) => f.suffix).sort()).toEqual([...suffixes[worker.prefix]].sort());
          for (const f of filters) expect(f.prefix).toBe(sourcePrefix);
        });

        it(`${tool} ${worker.binary}: visibility timeout is at least 6x the function timeout`, () => {
          expect(model.resources[name('Queue')].VisibilityTimeout).toBeGreaterThanOrEqual(
            VISIBILITY_TIMEOUT_FACTOR * fn().Timeout,
          );
        });
      }

      it(`${tool}: every notification goes to a worker's queue, none overlaps another, each suffix once`, () => {
        const configurations: Json[] = model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations;
        const queues = present.map((w) => `\${${w.prefix}Queue.Arn}`);
        for (const c of configurations) expect(queues).toContain(c.Queue);
        const all = Object.values(suffixes).flat();
        expect(configurations).toHaveLength(all.length);
        const filters = configurations.map(filterOf);
        for (let i = 0; i < filters.length; i++) {
          for (let j = i + 1; j < filters.length; j++) {
            const pair = `${JSON.stringify(filters[i])} / ${JSON.stringify(filters[j])}`;
            expect(overlaps(filters[i], filters[j]), pair).toBe(false);
          }
        }
      });

      it(`${tool}: the source bucket is created after every queue policy it notifies (S3 checks them)`, () => {
        expect(sourceBucketDependencies(template)).toEqual(
          expect.arrayContaining(present.map((w) => `${w.prefix}QueuePolicy`)),
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

  it('SourceSuffix is gone: uploads are routed by the contracts\' suffixes', () => {
    expect(sam.Parameters.SourceSuffix).toBeUndefined();
    expect(PARAMETER_SPECS.SourceSuffix).toBeUndefined();
    expect(() => synthCdk({ SourceSuffix: '.jpg' })).toThrow(/SourceSuffix was removed/);
  });

  it('video defaults: no layer, GIFs as stills, 3008 MB, 900 s, 4 GB /tmp, 1 per batch, 5 at once', () => {
    expect(DEFAULTS).toMatchObject({
      FfmpegLayerArn: '',
      AnimatedGifToVideo: 'false',
      TranscodeMemorySize: 3008,
      TranscodeTimeout: 900,
      TranscodeEphemeralStorage: 4096,
      TranscodeBatchSize: 1,
      TranscodeMaximumConcurrency: 5,
    });
    // Lambda's limits: timeout at most 900 s, /tmp 512-10240 MB, memory 128-10240 MB;
    // an SQS event source mapping's MaximumConcurrency is at least 2.
    expect(Math.max(...sam.Parameters.TranscodeTimeout.AllowedValues)).toBe(900);
    expect(PARAMETER_SPECS.TranscodeEphemeralStorage).toEqual({ kind: 'number', min: 512, max: 10240 });
    expect(PARAMETER_SPECS.TranscodeMemorySize).toEqual({ kind: 'number', min: 128, max: 10240 });
    expect(PARAMETER_SPECS.TranscodeMaximumConcurrency).toMatchObject({ min: 2 });
  });

  it('FfmpegLayerArn is empty or a Lambda layer version ARN', () => {
    const pattern = new RegExp(sam.Parameters.FfmpegLayerArn.AllowedPattern);
    for (const ok of ['', LAYER, 'arn:aws-cn:lambda:cn-north-1:123456789012:layer:ffmpeg_7-arm64:120']) {
      expect(pattern.test(ok), ok).toBe(true);
    }
    for (const bad of [
      'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg', // no version
      'arn:aws:lambda:us-east-1:123456789012:function:ffmpeg:3',
      'arn:aws:lambda:us-east-1:1234:layer:ffmpeg:3',
      'ffmpeg',
      ` ${LAYER}`,
    ]) {
      expect(pattern.test(bad), bad).toBe(false);
    }
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

  it('SAM maps every allowed transcode timeout to a transcode visibility timeout of exactly 6x', () => {
    const timeouts: number[] = sam.Parameters.TranscodeTimeout.AllowedValues;
    for (const timeout of timeouts) {
      expect(sam.Mappings.VisibilityTimeout[String(timeout)], String(timeout)).toBeDefined();
      const model = canonicalModel(evaluateSam(sam, { FfmpegLayerArn: LAYER, TranscodeTimeout: timeout }));
      expect(model.resources.TranscodeFunction.Timeout).toBe(timeout);
      expect(model.resources.TranscodeQueue.VisibilityTimeout).toBe(VISIBILITY_TIMEOUT_FACTOR * timeout);
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
