import * as path from 'node:path';
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ACCESS_LOG_PREFIXES, AccessLogs } from './access-logs';
import { Backfill } from './backfill';
import { Dashboard } from './dashboard';
import { Delivery, PUBLIC_BASE_URL_VARIABLE } from './delivery';
import { checkFfmpegLayerZip, FFMPEG_LAYER_DESCRIPTION, FFMPEG_LAYER_LICENSE } from './ffmpeg-layer';
import { type MediaflowParameters, validateParameters } from './parameters';
import { QueueWorker } from './queue-worker';
import { checkovSkips, ignoreLintChecks, skipChecks } from './suppressions';

/** The repository root: the Cargo workspace that holds functions/on-upload and functions/transcode. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export const STACK_DESCRIPTION =
  'mediaflow: every upload to (and removal from) the source bucket is queued in SQS for the Rust ' +
  'on-upload Lambda function, which turns images into resized variants and a JSON manifest in the ' +
  'output bucket and, with an ffmpeg layer, forwards videos to the Rust transcode function. ' +
  'See infra/README.md.';

/** The on-upload binary (`cargo lambda build --bin on-upload`), as in functions/on-upload/environment.json. */
export const ON_UPLOAD_BINARY = 'on-upload';

/** The on-upload crate's manifest, a member of the repository's Cargo workspace. */
export const ON_UPLOAD_MANIFEST = path.join(REPO_ROOT, 'functions', 'on-upload', 'Cargo.toml');

/**
 * The variables both functions read: MEDIAFLOW_OUTPUT_BUCKET (required),
 * MEDIAFLOW_OUTPUT_PREFIX (outputs go to {prefix}{variant}/{stem}.{ext} and
 * {prefix}manifest/{key}.json), MEDIAFLOW_CONFIG (mediaflow.toml text; empty
 * for the built-in default), MEDIAFLOW_ANIMATED_GIF ("true" when animated GIFs
 * become videos, which needs the transcode function; else empty) and
 * MEDIAFLOW_S3_PATH_STYLE (a boolean; empty: path-style S3 addressing only
 * with an endpoint override, so virtual-hosted in Lambda).
 */
const COMMON_ENVIRONMENT = [
  'MEDIAFLOW_OUTPUT_BUCKET',
  'MEDIAFLOW_OUTPUT_PREFIX',
  'MEDIAFLOW_CONFIG',
  'MEDIAFLOW_ANIMATED_GIF',
  'MEDIAFLOW_S3_PATH_STYLE',
] as const;

/**
 * The variables the on-upload function reads (functions/on-upload/environment.json):
 * the common ones plus MEDIAFLOW_VIDEO_QUEUE_URL (the transcode queue it
 * forwards videos to; empty without an ffmpeg layer).
 */
export const ON_UPLOAD_ENVIRONMENT = [...COMMON_ENVIRONMENT, 'MEDIAFLOW_VIDEO_QUEUE_URL'] as const;
/**
 * Both functions also get MEDIAFLOW_PUBLIC_BASE_URL (lib/delivery.ts), only
 * with Delivery=cloudfront: the variable is absent otherwise, which the
 * functions read as unset.
 */
type DeliveryEnvironment = Partial<Record<typeof PUBLIC_BASE_URL_VARIABLE, string>>;
type OnUploadEnvironment = Record<(typeof ON_UPLOAD_ENVIRONMENT)[number], string> & DeliveryEnvironment;

/** The transcode (video) binary, as in functions/transcode/environment.json. */
export const TRANSCODE_BINARY = 'transcode';

/** The transcode crate's manifest, a member of the same Cargo workspace (and target/ directory). */
export const TRANSCODE_MANIFEST = path.join(REPO_ROOT, 'functions', 'transcode', 'Cargo.toml');

/**
 * The variables the transcode function reads (functions/transcode/environment.json):
 * the common ones plus MEDIAFLOW_FFMPEG (the layer's /opt/bin/ffmpeg) and
 * MEDIAFLOW_FFPROBE (empty: next to ffmpeg).
 */
export const TRANSCODE_ENVIRONMENT = [...COMMON_ENVIRONMENT, 'MEDIAFLOW_FFMPEG', 'MEDIAFLOW_FFPROBE'] as const;
type TranscodeEnvironment = Record<(typeof TRANSCODE_ENVIRONMENT)[number], string> & DeliveryEnvironment;

/** Where a layer zip's bin/ffmpeg ends up (layers are extracted to /opt). */
export const FFMPEG_PATH = '/opt/bin/ffmpeg';

/**
 * The events the source bucket sends to on-upload's queue, for every key under
 * SourcePrefix (functions/on-upload/environment.json event_wiring.s3_events):
 * uploads, and removals (a version deleted, or a delete marker), whose outputs
 * on-upload removes. No suffix filter: S3 filters see neither the content nor
 * the letter case, so on-upload routes by the bytes.
 */
export const SOURCE_EVENTS = ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'] as const;

export type MediaflowStackProps = StackProps & MediaflowParameters;

/** The alarm topic's checkov suppression (the SAM template's AlarmTopic Metadata). */
export const ALARM_TOPIC_CHECKOV_SKIPS = {
  CKV_AWS_26:
    'CloudWatch alarms cannot publish to a topic encrypted with the aws/sns managed key; a customer managed key ' +
    'would be needed for messages that carry only alarm names and states.',
};

/**
 * Buckets, the S3 -> SQS -> Lambda wiring of the on-upload function (and,
 * with an ffmpeg layer, the transcode function fed by on-upload through its
 * own queue), their dead-letter queues and alarms: the same stack as
 * infra/sam/template.yaml.
 */
export class MediaflowStack extends Stack {
  readonly sourceBucket: s3.Bucket;
  /** The output bucket (the source bucket itself in single-bucket mode). */
  readonly outputBucket: s3.Bucket;
  readonly onUpload: QueueWorker;
  /** The video worker; undefined without an ffmpeg layer. */
  readonly transcode?: QueueWorker;
  /** The ffmpeg layer transcode runs with: referenced by ARN, or published by the stack. */
  readonly ffmpegLayer?: lambda.ILayerVersion;
  /** Backfill at scale (inventory bucket and state machine); undefined unless BackfillAtScale. */
  readonly backfill?: Backfill;
  /** The access-log bucket; undefined with AccessLogs=false. */
  readonly accessLogs?: AccessLogs;
  /** The CloudFront distribution in front of the outputs; undefined with Delivery=none. */
  readonly delivery?: Delivery;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MediaflowStackProps) {
    super(scope, id, { description: STACK_DESCRIPTION, ...props });
    validateParameters(props);
    const single = props.bucketMode === 'single';

    // Bucket names are built from the stack's UUID rather than read from the
    // bucket resources, so the queue policy (which S3 checks when it creates
    // the notification) can name the source bucket without a circular
    // dependency, and without CDK's notification custom resource (whose role
    // needs s3:PutBucketNotification on "*").
    const stackUuid = Fn.select(2, Fn.split('/', Aws.STACK_ID));
    const sourceBucketName = Fn.join('-', [props.bucketNamePrefix, 'source', stackUuid]);

    // -----------------------------------------------------------------------
    // 1. Storage
    // -----------------------------------------------------------------------
    this.sourceBucket = new s3.Bucket(this, 'SourceBucket', {
      bucketName: sourceBucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        { id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.outputBucket = single
      ? this.sourceBucket
      : new s3.Bucket(this, 'OutputBucket', {
          bucketName: Fn.join('-', [props.bucketNamePrefix, 'output', stackUuid]),
          encryption: s3.BucketEncryption.S3_MANAGED,
          blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
          objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
          enforceSSL: true,
          lifecycleRules: [
            { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
          ],
          removalPolicy: RemovalPolicy.RETAIN,
        });
    if (!single) {
      (this.outputBucket.node.defaultChild as s3.CfnBucket).cfnOptions.metadata = checkovSkips({
        CKV_AWS_21:
          'The outputs are derived from the versioned originals and made again by a re-upload or a backfill; ' +
          'versions would keep every replaced or removed output (the functions delete stale ones) and cost storage.',
      });
    }

    // Access logs (AccessLogs=true): the buckets' S3 server access logs and
    // the distribution's standard logs, in one bucket (lib/access-logs.ts).
    const delivers = props.delivery === 'cloudfront';
    if (props.accessLogs) {
      this.accessLogs = new AccessLogs(this, 'AccessLog', {
        retentionDays: props.accessLogRetentionDays,
        cloudFront: delivers,
      });
      this.accessLogs.logBucket(this.sourceBucket, ACCESS_LOG_PREFIXES.source);
      if (!single) this.accessLogs.logBucket(this.outputBucket, ACCESS_LOG_PREFIXES.output);
    }

    // -----------------------------------------------------------------------
    // Delivery (Delivery=cloudfront): CloudFront in front of the outputs,
    // made before the functions, whose MEDIAFLOW_PUBLIC_BASE_URL is its URL
    // (lib/delivery.ts).
    // -----------------------------------------------------------------------
    if (delivers) {
      this.delivery = new Delivery(this, 'Delivery', {
        bucket: this.outputBucket,
        outputPrefix: props.outputPrefix,
        // Unique in the account, like the bucket names; at most 64 characters.
        name: Fn.join('-', [props.bucketNamePrefix, 'output', stackUuid]),
        logBucket: this.accessLogs?.bucket,
      });
    }
    const publicBaseUrl: DeliveryEnvironment = this.delivery
      ? { [PUBLIC_BASE_URL_VARIABLE]: this.delivery.url }
      : {};
    const tracing = props.tracing === 'Active';

    // -----------------------------------------------------------------------
    // Alarm topic (shared by every worker's alarms), optional
    // -----------------------------------------------------------------------
    let alarmTopic: sns.ITopic | undefined;
    if (props.alarmTopicArn) {
      alarmTopic = sns.Topic.fromTopicArn(this, 'ExistingAlarmTopic', props.alarmTopicArn);
    } else if (props.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'mediaflow alarms', enforceSSL: true });
      skipChecks(topic.node.defaultChild as sns.CfnTopic, ALARM_TOPIC_CHECKOV_SKIPS);
      topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      // CDK only (SAM's topic lists its subscription inline).
      for (const subscription of topic.node.findAll()) {
        if (subscription instanceof sns.CfnSubscription) {
          ignoreLintChecks(subscription, {
            ES7000:
              'An email subscription for alarm notifications: an undelivered email leaves the alarm in ALARM in ' +
              'CloudWatch, so a dead-letter queue would be one more thing to watch for nothing.',
          });
        }
      }
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'AllowCloudWatchAlarms',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['sns:Publish'],
          resources: [topic.topicArn],
          conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
        }),
      );
      alarmTopic = topic;
    }

    // -----------------------------------------------------------------------
    // 2. transcode (only with an ffmpeg layer): fed by on-upload, which
    //    forwards the videos to its queue (no S3 notification). The same shape,
    //    plus the layer (extracted to /opt) and a larger /tmp. Made first
    //    because on-upload's environment and role name its queue.
    // -----------------------------------------------------------------------
    this.ffmpegLayer = this.makeFfmpegLayer(props);
    const animatedGif = props.animatedGifToVideo && this.ffmpegLayer !== undefined ? 'true' : '';
    if (this.ffmpegLayer !== undefined) {
      this.transcode = new QueueWorker(this, 'Transcode', {
        description: 'mediaflow transcode - web video renditions for each video upload (ffmpeg layer)',
        // A member of the same workspace: cargo lambda builds it into the same
        // target/ directory as on-upload, sharing the compiled dependencies.
        manifestPath: TRANSCODE_MANIFEST,
        binaryName: TRANSCODE_BINARY,
        architecture: props.architecture,
        memorySize: props.transcodeMemorySize,
        timeout: props.transcodeTimeout,
        ephemeralStorage: props.transcodeEphemeralStorage,
        layers: [this.ffmpegLayer],
        environment: {
          // Exactly the names in TRANSCODE_ENVIRONMENT (checked by `satisfies`).
          MEDIAFLOW_OUTPUT_BUCKET: this.outputBucket.bucketName,
          MEDIAFLOW_OUTPUT_PREFIX: props.outputPrefix,
          MEDIAFLOW_CONFIG: props.variantsConfig,
          MEDIAFLOW_FFMPEG: FFMPEG_PATH,
          MEDIAFLOW_FFPROBE: '',
          MEDIAFLOW_ANIMATED_GIF: animatedGif,
          MEDIAFLOW_S3_PATH_STYLE: '',
          ...publicBaseUrl,
        } satisfies TranscodeEnvironment,
        logLevel: props.logLevel,
        logRetentionDays: props.logRetentionDays,
        batchSize: props.transcodeBatchSize,
        maximumConcurrency: props.transcodeMaximumConcurrency,
        maxReceiveCount: props.maxReceiveCount,
        queueAgeAlarmSeconds: props.queueAgeAlarmSeconds,
        alarmTopic,
        tracing,
      });
      // HeadObject on outputs and manifests, to check what is already done
      // before a long transcode; DeleteObject for stale renditions after a re-upload.
      this.grantData(this.transcode.role, props);
    }

    // -----------------------------------------------------------------------
    // 3. on-upload: S3 (every object created or removed under SourcePrefix) ->
    //    queue -> function, failures -> dead-letter queue. It decides by the
    //    bytes: images it processes, videos it forwards to transcode.
    // -----------------------------------------------------------------------
    this.onUpload = new QueueWorker(this, 'OnUpload', {
      description: 'mediaflow on-upload - resized variants and a manifest for each upload',
      manifestPath: ON_UPLOAD_MANIFEST,
      binaryName: ON_UPLOAD_BINARY,
      architecture: props.architecture,
      memorySize: props.memorySize,
      timeout: props.timeout,
      reservedConcurrency: props.reservedConcurrency,
      environment: {
        // Exactly the names in ON_UPLOAD_ENVIRONMENT (checked by `satisfies`).
        MEDIAFLOW_OUTPUT_BUCKET: this.outputBucket.bucketName,
        MEDIAFLOW_OUTPUT_PREFIX: props.outputPrefix,
        MEDIAFLOW_CONFIG: props.variantsConfig,
        // Empty without the video function: videos then fail (permanently).
        MEDIAFLOW_VIDEO_QUEUE_URL: this.transcode?.queue.queueUrl ?? '',
        // The same value as transcode's: animated GIFs are forwarded only when it exists.
        MEDIAFLOW_ANIMATED_GIF: animatedGif,
        MEDIAFLOW_S3_PATH_STYLE: '',
        ...publicBaseUrl,
      } satisfies OnUploadEnvironment,
      logLevel: props.logLevel,
      logRetentionDays: props.logRetentionDays,
      batchSize: props.batchSize,
      maximumConcurrency: props.maximumConcurrency,
      maxReceiveCount: props.maxReceiveCount,
      queueAgeAlarmSeconds: props.queueAgeAlarmSeconds,
      alarmTopic,
      tracing,
    });
    // HeadObject on output keys (collisions), manifests and failure records;
    // DeleteObject for a removed upload's outputs.
    this.grantData(this.onUpload.role, props);
    if (this.transcode) {
      // Only SendMessage (not grantSendMessages, which adds GetQueueAttributes
      // and GetQueueUrl): the function has the URL. Same account, so the
      // transcode queue's policy needs no statement for it.
      this.onUpload.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ForwardVideos',
          actions: ['sqs:SendMessage'],
          resources: [this.transcode.queue.queueArn],
        }),
      );
    }

    this.notifyOnUpload(sourceBucketName, props);

    // -----------------------------------------------------------------------
    // 4. Backfill at scale (only with BackfillAtScale): S3 Inventory of the
    //    source bucket, and a Distributed Map sending each object of a report
    //    to on-upload's queue (lib/backfill.ts, docs/backfill.md).
    // -----------------------------------------------------------------------
    if (props.backfillAtScale) {
      this.backfill = new Backfill(this, 'Backfill', {
        sourceBucket: this.sourceBucket,
        sourcePrefix: props.sourcePrefix,
        queue: this.onUpload.queue,
        maxConcurrency: props.backfillMaxConcurrency,
        toleratedFailurePercentage: props.backfillToleratedFailurePercentage,
        inventoryRetentionDays: props.backfillInventoryRetentionDays,
        logRetentionDays: props.logRetentionDays,
        accessLogs: this.accessLogs,
        tracing,
      });
    }
    // S3 server access logging may write for each bucket that logs there.
    this.accessLogs?.allowServerAccessLogs([
      this.sourceBucket,
      ...(single ? [] : [this.outputBucket]),
      ...(this.backfill ? [this.backfill.inventoryBucket] : []),
    ]);

    // -----------------------------------------------------------------------
    // 5. The dashboard: the functions' EMF metrics, Lambda, SQS and
    //    CloudFront (lib/dashboard.ts)
    // -----------------------------------------------------------------------
    this.dashboard = new Dashboard(this, 'Dashboard', {
      workers: [
        { name: 'on-upload', worker: this.onUpload },
        ...(this.transcode ? [{ name: 'transcode', worker: this.transcode }] : []),
      ],
      distributionId: this.delivery?.distribution.ref,
    });

    // -----------------------------------------------------------------------
    // 6. Outputs (same names as the SAM template's)
    // -----------------------------------------------------------------------
    const output = (name: string, value: string, description: string) =>
      new CfnOutput(this, name, { value, description });
    output('SourceBucketName', this.sourceBucket.bucketName, 'Upload here (under SourcePrefix) to trigger the functions.');
    output('OutputBucketName', this.outputBucket.bucketName, 'Variants and manifests appear here (under OutputPrefix).');
    output('SourcePrefix', props.sourcePrefix, 'Key prefix that triggers the functions (empty for the whole bucket).');
    output('OutputPrefix', props.outputPrefix, 'Key prefix of the outputs (MEDIAFLOW_OUTPUT_PREFIX).');
    output(
      'OnUploadQueueUrl',
      this.onUpload.queue.queueUrl,
      'The S3 notification queue the on-upload function consumes (every upload and removal).',
    );
    output(
      'OnUploadDeadLetterQueueUrl',
      this.onUpload.deadLetterQueue.queueUrl,
      'Uploads that failed MaxReceiveCount times; read and redrive them from here.',
    );
    output(
      'OnUploadDeadLetterQueueArn',
      this.onUpload.deadLetterQueue.queueArn,
      'For `aws sqs start-message-move-task --source-arn`.',
    );
    output('OnUploadFunctionArn', this.onUpload.function.functionArn, 'The on-upload Lambda function.');
    output('OnUploadLogGroupName', this.onUpload.logGroup.logGroupName, "The function's CloudWatch log group (JSON logs).");
    if (this.transcode) {
      output(
        'TranscodeQueueUrl',
        this.transcode.queue.queueUrl,
        'The queue the transcode function consumes (videos forwarded by on-upload).',
      );
      output(
        'TranscodeDeadLetterQueueUrl',
        this.transcode.deadLetterQueue.queueUrl,
        'Video uploads that failed MaxReceiveCount times; read and redrive them from here.',
      );
      output(
        'TranscodeDeadLetterQueueArn',
        this.transcode.deadLetterQueue.queueArn,
        'For `aws sqs start-message-move-task --source-arn`.',
      );
      output('TranscodeFunctionArn', this.transcode.function.functionArn, 'The transcode Lambda function.');
      output(
        'TranscodeLogGroupName',
        this.transcode.logGroup.logGroupName,
        "The transcode function's CloudWatch log group (JSON logs).",
      );
    }
    if (this.backfill) {
      output(
        'BackfillStateMachineArn',
        this.backfill.stateMachine.attrArn,
        'The backfill state machine: start it with {"Bucket": BackfillInventoryBucketName, "Key": ' +
          '".../manifest.json"} (docs/backfill.md).',
      );
      output(
        'BackfillInventoryBucketName',
        this.backfill.inventoryBucket.bucketName,
        'Daily S3 Inventory reports of the source bucket (<source bucket>/mediaflow-backfill/<date>/manifest.json).',
      );
    }
    if (this.delivery) {
      output(
        'DeliveryUrl',
        this.delivery.url,
        "The outputs' public base URL (MEDIAFLOW_PUBLIC_BASE_URL): this, '/' and an output's key.",
      );
      output('DeliveryDistributionId', this.delivery.distribution.ref, 'The CloudFront distribution (invalidations).');
      output(
        'DeliveryDomainName',
        this.delivery.distribution.attrDomainName,
        "The distribution's domain name (DNS CNAME target).",
      );
    }
    if (this.accessLogs) {
      output(
        'AccessLogBucketName',
        this.accessLogs.bucket.bucketName,
        'S3 server access logs (s3/source/, s3/output/, s3/inventory/) and CloudFront standard logs (cloudfront/).',
      );
    }
    output('DashboardUrl', this.dashboard.url, 'The CloudWatch dashboard: EMF metrics, Lambda, SQS and CloudFront.');
    if (alarmTopic) output('AlarmTopicArn', alarmTopic.topicArn, 'SNS topic the alarms notify.');
  }

  /**
   * The ffmpeg layer: the caller's (FfmpegLayerArn), or a layer version the
   * stack publishes from a zip made by infra/layers/ffmpeg/build, local
   * (FfmpegLayerZip: a CDK asset) or in S3 (FfmpegLayerZipBucket/Key, as the
   * SAM template's TranscodeFfmpegLayer). A new zip publishes a new version;
   * the old one is deleted (a function that uses it keeps it). Undefined: no
   * layer, no video function.
   */
  private makeFfmpegLayer(p: MediaflowParameters): lambda.ILayerVersion | undefined {
    if (p.ffmpegLayerArn !== undefined) {
      return lambda.LayerVersion.fromLayerVersionArn(this, 'FfmpegLayer', p.ffmpegLayerArn);
    }
    let code: lambda.Code;
    if (p.ffmpegLayerZip !== undefined) {
      checkFfmpegLayerZip(p.ffmpegLayerZip, p.architecture);
      code = lambda.Code.fromAsset(p.ffmpegLayerZip);
    } else if (p.ffmpegLayerZipBucket !== undefined && p.ffmpegLayerZipKey !== undefined) {
      const bucket = s3.Bucket.fromBucketName(this, 'FfmpegLayerZipBucket', p.ffmpegLayerZipBucket);
      code = lambda.Code.fromBucket(bucket, p.ffmpegLayerZipKey);
    } else {
      return undefined;
    }
    return new lambda.LayerVersion(this, 'TranscodeFfmpegLayer', {
      layerVersionName: `${Aws.STACK_NAME}-ffmpeg`,
      description: FFMPEG_LAYER_DESCRIPTION,
      code,
      compatibleArchitectures: [p.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64],
      // As cargo-lambda-cdk's RustFunction makes it (no RuntimeFamily): the CDK
      // checks a layer's runtimes against the function's with runtimeEquals.
      compatibleRuntimes: [new lambda.Runtime('provided.al2023')],
      license: FFMPEG_LAYER_LICENSE,
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  /**
   * Read the uploads; write, read back (GetObject, HeadObject) and delete the
   * outputs: nothing else. Nothing under SourcePrefix may be written or
   * deleted (originals are never modified).
   */
  private grantData(role: iam.Role, p: MediaflowParameters): void {
    const outputs = this.outputBucket.arnForObjects(`${p.outputPrefix}*`);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadUploads',
        actions: ['s3:GetObject'],
        resources: [this.sourceBucket.arnForObjects(`${p.sourcePrefix}*`)],
      }),
    );
    for (const [sid, action] of [
      ['WriteOutputs', 's3:PutObject'],
      ['ReadOutputs', 's3:GetObject'],
      ['DeleteOutputs', 's3:DeleteObject'],
    ]) {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions: [action], resources: [outputs] }));
    }
    // Without s3:ListBucket S3 answers 403 instead of 404 for a missing key (a
    // manifest not written yet, an upload deleted before it was processed).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NotFoundInsteadOfAccessDenied',
        actions: ['s3:ListBucket'],
        resources:
          this.outputBucket === this.sourceBucket
            ? [this.sourceBucket.bucketArn]
            : [this.sourceBucket.bucketArn, this.outputBucket.bucketArn],
      }),
    );
  }

  /**
   * SOURCE_EVENTS on the source bucket -> on-upload's queue, for every key
   * under SourcePrefix (no filter at all when it is empty): one notification
   * per event type, with a prefix rule only.
   */
  private notifyOnUpload(sourceBucketName: string, p: MediaflowParameters): void {
    const queue = this.onUpload.queue;
    queue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowSourceBucketNotifications',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [queue.queueArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': `arn:${Aws.PARTITION}:s3:::${sourceBucketName}` },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    );
    const filter: s3.CfnBucket.NotificationFilterProperty | undefined = p.sourcePrefix
      ? { s3Key: { rules: [{ name: 'prefix', value: p.sourcePrefix }] } }
      : undefined;
    const cfnBucket = this.sourceBucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: SOURCE_EVENTS.map((event) => ({ event, queue: queue.queueArn, filter })),
    };
    // S3 sends a test message when the notification is created: the queue
    // policy must exist first.
    const queuePolicy = queue.node.tryFindChild('Policy') as sqs.QueuePolicy | undefined;
    if (!queuePolicy) throw new Error('mediaflow: the queue has no resource policy');
    cfnBucket.addResourceDependency(queuePolicy.node.defaultChild as sqs.CfnQueuePolicy);
  }
}
