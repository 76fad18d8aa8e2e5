/**
 * The stack's parameters: the same names, defaults and constraints as the
 * Parameters of infra/sam/template.yaml (test/consistency.test.ts checks it).
 *
 * In the CDK app they are CDK context values with the SAM parameter's name,
 * e.g. `npx cdk deploy -c MemorySize=3008 -c OutputPrefix=media/`, or entries
 * of the "context" object in cdk.json. The stack's props use the same names in
 * camelCase (MemorySize -> memorySize).
 */

export type BucketMode = 'separate' | 'single';
export type ArchitectureName = 'arm64' | 'x86_64';
export type LogLevelName = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
export type DeliveryName = 'cloudfront' | 'none';
export type TracingName = 'Disabled' | 'Active';

export interface MediaflowParameters {
  /** "separate": a source and an output bucket; "single": one bucket, prefixes keep them apart. */
  readonly bucketMode: BucketMode;
  /** Bucket names are <prefix>-source-<stack uuid> and <prefix>-output-<stack uuid>. */
  readonly bucketNamePrefix: string;
  /**
   * Only keys with this prefix (created or removed) trigger on-upload ("" for
   * all; required in single mode), whatever their extension: on-upload decides
   * by the content, and forwards videos to transcode.
   */
  readonly sourcePrefix: string;
  /** MEDIAFLOW_OUTPUT_PREFIX: "" or ending in "/" (required in single mode). */
  readonly outputPrefix: string;
  /** Days an overwritten or deleted upload's old version is kept. */
  readonly noncurrentVersionDays: number;
  /** Lambda instruction set. */
  readonly architecture: ArchitectureName;
  /** Function memory in MB (CPU share grows with it: 1769 MB = 1 vCPU). */
  readonly memorySize: number;
  /** Function timeout in seconds; the queue's visibility timeout is 6x this. */
  readonly timeout: number;
  /** Reserved concurrency for the function; undefined for none. */
  readonly reservedConcurrency?: number;
  /** MEDIAFLOW_CONFIG: variants config as mediaflow.toml text; "" for the built-in default. */
  readonly variantsConfig: string;
  /** Application log level (logs are JSON). */
  readonly logLevel: LogLevelName;
  /** Log retention in days. */
  readonly logRetentionDays: number;
  /** Most SQS messages (uploads) per invocation. */
  readonly batchSize: number;
  /** Most concurrent invocations driven by the queue. */
  readonly maximumConcurrency: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Queue-age alarm threshold in seconds. */
  readonly queueAgeAlarmSeconds: number;
  /** Optional email subscribed to a new alarm topic (ignored when alarmTopicArn is set). */
  readonly alarmEmail?: string;
  /** Optional existing SNS topic for the alarms. */
  readonly alarmTopicArn?: string;
  /**
   * A Lambda layer version with bin/ffmpeg and bin/ffprobe. Undefined, and no
   * layer zip below: no video (transcode) function and nothing that belongs to
   * it (SAM's HasVideo).
   */
  readonly ffmpegLayerArn?: string;
  /**
   * Instead of ffmpegLayerArn: a layer zip made by infra/layers/ffmpeg/build,
   * in S3 (bucket and key, both or neither), that the stack publishes as a
   * layer version for transcode (SAM's PublishesFfmpegLayer).
   */
  readonly ffmpegLayerZipBucket?: string;
  readonly ffmpegLayerZipKey?: string;
  /**
   * CDK only (context FfmpegLayerZip; SAM cannot take a local file as a
   * parameter): the same, from a local zip that the CDK uploads as an asset.
   * An absolute path.
   */
  readonly ffmpegLayerZip?: string;
  /**
   * Animated GIFs become videos: on-upload forwards them to transcode
   * (MEDIAFLOW_ANIMATED_GIF=true in both) when there is one; else on-upload makes stills.
   */
  readonly animatedGifToVideo: boolean;
  /** Transcode function memory in MB. */
  readonly transcodeMemorySize: number;
  /** Transcode function timeout in seconds; its queue's visibility timeout is 6x this. */
  readonly transcodeTimeout: number;
  /** Transcode function /tmp size in MB (source video and outputs). */
  readonly transcodeEphemeralStorage: number;
  /** Most video uploads per transcode invocation. */
  readonly transcodeBatchSize: number;
  /** Most concurrent transcode invocations driven by its queue. */
  readonly transcodeMaximumConcurrency: number;
  /**
   * Backfill at scale (SAM's HasBackfill): a daily S3 Inventory of the source
   * bucket into an inventory bucket, and a Step Functions Distributed Map that
   * sends each object of a report to on-upload's queue (lib/backfill.ts).
   */
  readonly backfillAtScale: boolean;
  /** Most child workflows of the Distributed Map at once. */
  readonly backfillMaxConcurrency: number;
  /** Percentage of objects (whole batches of ten) whose sending may fail before the execution fails. */
  readonly backfillToleratedFailurePercentage: number;
  /** Days an inventory report is kept. */
  readonly backfillInventoryRetentionDays: number;
  /**
   * "cloudfront": a CloudFront distribution serves the output bucket (origin
   * access control, only keys under OutputPrefix), and both functions get
   * MEDIAFLOW_PUBLIC_BASE_URL=https://<its domain> (lib/delivery.ts).
   * "none": no distribution, no variable.
   */
  readonly delivery: DeliveryName;
  /**
   * An access-log bucket: S3 server access logs of the stack's buckets and
   * the distribution's standard logs (lib/access-logs.ts).
   */
  readonly accessLogs: boolean;
  /** Days an access log is kept. */
  readonly accessLogRetentionDays: number;
  /** "Active": X-Ray traces of both functions and the backfill state machine. */
  readonly tracing: TracingName;
}

type Spec =
  | { kind: 'enum'; values: readonly (string | number)[]; number?: boolean }
  | { kind: 'number'; min: number; max?: number }
  /** pattern: a CloudFormation AllowedPattern (the whole value must match). */
  | { kind: 'string'; pattern?: string; maxLength?: number };

/** Constraints per parameter, keyed by the SAM parameter name. */
export const PARAMETER_SPECS: Record<string, Spec> = {
  BucketMode: { kind: 'enum', values: ['separate', 'single'] },
  BucketNamePrefix: { kind: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,18}$' },
  SourcePrefix: { kind: 'string', pattern: '^([^/*?][^*?]*)?$' },
  OutputPrefix: { kind: 'string', pattern: '^([^/*?][^*?]*/)?$' },
  NoncurrentVersionDays: { kind: 'number', min: 1, max: 3650 },
  Architecture: { kind: 'enum', values: ['arm64', 'x86_64'] },
  MemorySize: { kind: 'number', min: 512, max: 10240 },
  Timeout: { kind: 'enum', values: [15, 30, 60, 120, 180, 300, 600, 900], number: true },
  ReservedConcurrency: { kind: 'string', pattern: '^([1-9][0-9]{0,3})?$' },
  VariantsConfig: { kind: 'string', maxLength: 3500 },
  LogLevel: { kind: 'enum', values: ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] },
  LogRetentionDays: {
    kind: 'enum',
    number: true,
    values: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653],
  },
  BatchSize: { kind: 'number', min: 1, max: 10 },
  MaximumConcurrency: { kind: 'number', min: 2, max: 1000 },
  MaxReceiveCount: { kind: 'number', min: 1, max: 1000 },
  QueueAgeAlarmSeconds: { kind: 'number', min: 60 },
  AlarmEmail: { kind: 'string', pattern: '^([^@\\s]+@[^@\\s]+)?$' },
  AlarmTopicArn: { kind: 'string', pattern: '^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+)?$' },
  FfmpegLayerArn: {
    kind: 'string',
    pattern: '^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+)?$',
  },
  FfmpegLayerZipBucket: { kind: 'string', pattern: '^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$' },
  FfmpegLayerZipKey: { kind: 'string', pattern: '^([^\\s/][^\\s]*)?$', maxLength: 1024 },
  AnimatedGifToVideo: { kind: 'enum', values: ['false', 'true'] },
  TranscodeMemorySize: { kind: 'number', min: 128, max: 10240 },
  TranscodeTimeout: { kind: 'enum', values: [15, 30, 60, 120, 180, 300, 600, 900], number: true },
  TranscodeEphemeralStorage: { kind: 'number', min: 512, max: 10240 },
  TranscodeBatchSize: { kind: 'number', min: 1, max: 10 },
  TranscodeMaximumConcurrency: { kind: 'number', min: 2, max: 1000 },
  BackfillAtScale: { kind: 'enum', values: ['false', 'true'] },
  BackfillMaxConcurrency: { kind: 'number', min: 1, max: 10000 },
  BackfillToleratedFailurePercentage: { kind: 'number', min: 0, max: 100 },
  BackfillInventoryRetentionDays: { kind: 'number', min: 1, max: 3650 },
  Delivery: { kind: 'enum', values: ['cloudfront', 'none'] },
  AccessLogs: { kind: 'enum', values: ['false', 'true'] },
  AccessLogRetentionDays: { kind: 'number', min: 1, max: 3650 },
  Tracing: { kind: 'enum', values: ['Disabled', 'Active'] },
};

/** Defaults, keyed by the SAM parameter name, as the SAM template writes them. */
export const DEFAULTS: Record<string, string | number> = {
  BucketMode: 'separate',
  BucketNamePrefix: 'mediaflow',
  SourcePrefix: '',
  OutputPrefix: '',
  NoncurrentVersionDays: 30,
  Architecture: 'arm64',
  // 2048 MB is 1.16 vCPU. Uploads are admitted through a memory budget of this
  // minus 128 MB, estimated from each header: a 100 MP 16-bit PNG or 64 MP AVIF
  // (about 1.3 GB) runs alone, a 100 MP JPEG (230-420 MB) four to eight at a time.
  MemorySize: 2048,
  // A batch of 4 x 100 MP photos (a few seconds each on one vCPU) leaves 3x headroom.
  Timeout: 60,
  ReservedConcurrency: '',
  VariantsConfig: '',
  LogLevel: 'INFO',
  LogRetentionDays: 30,
  BatchSize: 4,
  MaximumConcurrency: 10,
  MaxReceiveCount: 5,
  QueueAgeAlarmSeconds: 900,
  AlarmEmail: '',
  AlarmTopicArn: '',
  // Video (transcode): nothing unless a layer is given.
  FfmpegLayerArn: '',
  FfmpegLayerZipBucket: '',
  FfmpegLayerZipKey: '',
  AnimatedGifToVideo: 'false',
  // 3008 MB is about 1.7 vCPUs (1769 MB = 1 vCPU): close to two cores for x264;
  // its memory budget fits a 1080p rendition (about 650 MB estimated).
  TranscodeMemorySize: 3008,
  // Lambda's maximum; the transcode queue's visibility timeout is 6 x 900 s.
  TranscodeTimeout: 900,
  // /tmp holds the downloaded source and every encoded output until uploaded.
  TranscodeEphemeralStorage: 4096,
  // One video per invocation: each can take minutes.
  TranscodeBatchSize: 1,
  // The minimum for an SQS event source mapping is 2.
  TranscodeMaximumConcurrency: 5,
  // Backfill at scale: off. Ten child workflows of ten messages each at once.
  BackfillAtScale: 'false',
  BackfillMaxConcurrency: 10,
  // Any batch that could not be sent fails the execution.
  BackfillToleratedFailurePercentage: 0,
  BackfillInventoryRetentionDays: 14,
  // The outputs are served by CloudFront unless Delivery=none.
  Delivery: 'cloudfront',
  // S3 server access logs and CloudFront standard logs, kept 90 days.
  AccessLogs: 'true',
  AccessLogRetentionDays: 90,
  // X-Ray costs per trace: opt in.
  Tracing: 'Disabled',
};

/** MemorySize -> memorySize */
export function propName(parameter: string): string {
  return parameter.charAt(0).toLowerCase() + parameter.slice(1);
}

function check(name: string, raw: unknown): string | number {
  const spec = PARAMETER_SPECS[name];
  const fail = (why: string): never => {
    throw new Error(`mediaflow: parameter ${name}=${JSON.stringify(raw)}: ${why}`);
  };
  switch (spec.kind) {
    case 'enum': {
      const value = spec.number ? Number(raw) : String(raw);
      if (!spec.values.includes(value)) fail(`must be one of ${spec.values.join(', ')}`);
      return value;
    }
    case 'number': {
      const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isInteger(value)) fail('must be a whole number');
      if (value < spec.min) fail(`must be at least ${spec.min}`);
      if (spec.max !== undefined && value > spec.max) fail(`must be at most ${spec.max}`);
      return value;
    }
    case 'string': {
      const value = String(raw);
      if (spec.pattern !== undefined && !new RegExp(spec.pattern).test(value)) fail(`must match ${spec.pattern}`);
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        fail(`is longer than ${spec.maxLength} characters`);
      }
      return value;
    }
  }
}

/**
 * Resolves every parameter from `lookup` (by SAM name; undefined for "use the
 * default"), validates it like CloudFormation would, and applies the rules of
 * the SAM template's `Rules` section. `lookup('FfmpegLayerZip')` is the
 * CDK-only local layer zip (an absolute path), if any.
 */
export function resolveParameters(lookup: (name: string) => unknown): MediaflowParameters {
  const values: Record<string, string | number> = {};
  for (const name of Object.keys(PARAMETER_SPECS)) {
    const raw = lookup(name);
    values[name] = check(name, raw === undefined || raw === null ? DEFAULTS[name] : raw);
  }
  const parameters: MediaflowParameters = {
    bucketMode: values.BucketMode as BucketMode,
    bucketNamePrefix: values.BucketNamePrefix as string,
    sourcePrefix: values.SourcePrefix as string,
    outputPrefix: values.OutputPrefix as string,
    noncurrentVersionDays: values.NoncurrentVersionDays as number,
    architecture: values.Architecture as ArchitectureName,
    memorySize: values.MemorySize as number,
    timeout: values.Timeout as number,
    reservedConcurrency: values.ReservedConcurrency === '' ? undefined : Number(values.ReservedConcurrency),
    variantsConfig: values.VariantsConfig as string,
    logLevel: values.LogLevel as LogLevelName,
    logRetentionDays: values.LogRetentionDays as number,
    batchSize: values.BatchSize as number,
    maximumConcurrency: values.MaximumConcurrency as number,
    maxReceiveCount: values.MaxReceiveCount as number,
    queueAgeAlarmSeconds: values.QueueAgeAlarmSeconds as number,
    alarmEmail: values.AlarmEmail === '' ? undefined : (values.AlarmEmail as string),
    alarmTopicArn: values.AlarmTopicArn === '' ? undefined : (values.AlarmTopicArn as string),
    ffmpegLayerArn: values.FfmpegLayerArn === '' ? undefined : (values.FfmpegLayerArn as string),
    ffmpegLayerZipBucket: values.FfmpegLayerZipBucket === '' ? undefined : (values.FfmpegLayerZipBucket as string),
    ffmpegLayerZipKey: values.FfmpegLayerZipKey === '' ? undefined : (values.FfmpegLayerZipKey as string),
    ffmpegLayerZip: optionalString(lookup('FfmpegLayerZip')),
    animatedGifToVideo: values.AnimatedGifToVideo === 'true',
    transcodeMemorySize: values.TranscodeMemorySize as number,
    transcodeTimeout: values.TranscodeTimeout as number,
    transcodeEphemeralStorage: values.TranscodeEphemeralStorage as number,
    transcodeBatchSize: values.TranscodeBatchSize as number,
    transcodeMaximumConcurrency: values.TranscodeMaximumConcurrency as number,
    backfillAtScale: values.BackfillAtScale === 'true',
    backfillMaxConcurrency: values.BackfillMaxConcurrency as number,
    backfillToleratedFailurePercentage: values.BackfillToleratedFailurePercentage as number,
    backfillInventoryRetentionDays: values.BackfillInventoryRetentionDays as number,
    delivery: values.Delivery as DeliveryName,
    accessLogs: values.AccessLogs === 'true',
    accessLogRetentionDays: values.AccessLogRetentionDays as number,
    tracing: values.Tracing as TracingName,
  };
  validateParameters(parameters);
  return parameters;
}

function optionalString(raw: unknown): string | undefined {
  return raw === undefined || raw === null || String(raw) === '' ? undefined : String(raw);
}

/** Whether the stack has an ffmpeg layer (from any source), and so the transcode function. */
export function hasFfmpegLayer(p: MediaflowParameters): boolean {
  return p.ffmpegLayerArn !== undefined || p.ffmpegLayerZip !== undefined || p.ffmpegLayerZipBucket !== undefined;
}

/** The cross-parameter checks (the SAM template's Rules, and the recursion guard). */
export function validateParameters(p: MediaflowParameters): void {
  // As the SAM template's FfmpegLayerFromOneSource rule (FfmpegLayerZip is CDK only).
  if ((p.ffmpegLayerZipBucket === undefined) !== (p.ffmpegLayerZipKey === undefined)) {
    throw new Error('mediaflow: FfmpegLayerZipBucket and FfmpegLayerZipKey go together');
  }
  const sources = [
    p.ffmpegLayerArn !== undefined && 'FfmpegLayerArn',
    p.ffmpegLayerZip !== undefined && 'FfmpegLayerZip',
    p.ffmpegLayerZipBucket !== undefined && 'FfmpegLayerZipBucket/FfmpegLayerZipKey',
  ].filter(Boolean);
  if (sources.length > 1) {
    throw new Error(
      `mediaflow: give one ffmpeg layer: FfmpegLayerArn (an existing layer), FfmpegLayerZip (a local zip) ` +
        `or FfmpegLayerZipBucket with FfmpegLayerZipKey (a zip in S3), not ${sources.join(' and ')}`,
    );
  }
  if (p.bucketMode === 'single') {
    if (p.sourcePrefix === '' || p.outputPrefix === '') {
      throw new Error(
        'mediaflow: BucketMode=single needs both SourcePrefix (e.g. "uploads/") and OutputPrefix ' +
          '(e.g. "media/"), or the function\'s own outputs would trigger it',
      );
    }
    // Neither prefix may start with the other. The SAM template refuses the
    // same through its condition SingleBucketPrefixesOverlap, which compares
    // the prefixes level by level ("/"-separated, up to 10 levels): it misses
    // only a SourcePrefix that ends inside a level of OutputPrefix (e.g. "med"
    // and "media/"), which this check refuses too.
    if (p.sourcePrefix.startsWith(p.outputPrefix) || p.outputPrefix.startsWith(p.sourcePrefix)) {
      throw new Error(
        `mediaflow: BucketMode=single: SourcePrefix "${p.sourcePrefix}" and OutputPrefix ` +
          `"${p.outputPrefix}" overlap, so outputs would trigger the function`,
      );
    }
  }
  if (p.reservedConcurrency !== undefined && p.reservedConcurrency < p.maximumConcurrency) {
    // Allowed (it is only a warning in the README for SAM), but worth a note at synth time.
    process.emitWarning(
      `mediaflow: ReservedConcurrency ${p.reservedConcurrency} < MaximumConcurrency ` +
        `${p.maximumConcurrency}: throttled batches return to the queue and count as receives`,
    );
  }
  if (p.animatedGifToVideo && !hasFfmpegLayer(p)) {
    // As in the SAM template (GifToTranscode needs HasVideo): MEDIAFLOW_ANIMATED_GIF stays empty.
    process.emitWarning(
      'mediaflow: AnimatedGifToVideo=true has no effect without an ffmpeg layer (FfmpegLayerArn, FfmpegLayerZip ' +
        'or FfmpegLayerZipBucket): on-upload makes stills of animated GIFs',
    );
  }
}
