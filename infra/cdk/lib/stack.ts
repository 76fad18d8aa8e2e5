import * as path from 'node:path';
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { type MediaflowParameters, validateParameters } from './parameters';
import { QueueWorker } from './queue-worker';

/** The repository root: the Cargo workspace that holds functions/on-upload. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export const STACK_DESCRIPTION =
  'mediaflow: an upload to the source bucket is queued in SQS and turned by the Rust on-upload ' +
  'Lambda function into resized variants and a JSON manifest in the output bucket. See infra/README.md.';

/** The on-upload binary (`cargo lambda build --bin on-upload`), as in functions/on-upload/environment.json. */
export const ON_UPLOAD_BINARY = 'on-upload';

/** The on-upload crate's manifest, a member of the repository's Cargo workspace. */
export const ON_UPLOAD_MANIFEST = path.join(REPO_ROOT, 'functions', 'on-upload', 'Cargo.toml');

/**
 * The variables the on-upload function reads (functions/on-upload/environment.json):
 * MEDIAFLOW_OUTPUT_BUCKET (required), MEDIAFLOW_OUTPUT_PREFIX (outputs go to
 * {prefix}{variant}/{stem}.{ext} and {prefix}manifest/{key}.json) and
 * MEDIAFLOW_CONFIG (mediaflow.toml text; empty for the built-in default).
 */
export const ON_UPLOAD_ENVIRONMENT = ['MEDIAFLOW_OUTPUT_BUCKET', 'MEDIAFLOW_OUTPUT_PREFIX', 'MEDIAFLOW_CONFIG'] as const;
type OnUploadEnvironment = Record<(typeof ON_UPLOAD_ENVIRONMENT)[number], string>;

export type MediaflowStackProps = StackProps & MediaflowParameters;

/**
 * Buckets, the S3 -> SQS -> Lambda wiring of the on-upload function, its
 * dead-letter queue and alarms: the same stack as infra/sam/template.yaml.
 */
export class MediaflowStack extends Stack {
  readonly sourceBucket: s3.Bucket;
  /** The output bucket (the source bucket itself in single-bucket mode). */
  readonly outputBucket: s3.Bucket;
  readonly onUpload: QueueWorker;

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

    // -----------------------------------------------------------------------
    // Alarm topic (shared by every worker's alarms), optional
    // -----------------------------------------------------------------------
    let alarmTopic: sns.ITopic | undefined;
    if (props.alarmTopicArn) {
      alarmTopic = sns.Topic.fromTopicArn(this, 'ExistingAlarmTopic', props.alarmTopicArn);
    } else if (props.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'mediaflow alarms', enforceSSL: true });
      topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
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
    // 2. on-upload: S3 -> queue -> function, failures -> dead-letter queue
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
      } satisfies OnUploadEnvironment,
      logLevel: props.logLevel,
      logRetentionDays: props.logRetentionDays,
      batchSize: props.batchSize,
      maximumConcurrency: props.maximumConcurrency,
      maxReceiveCount: props.maxReceiveCount,
      queueAgeAlarmSeconds: props.queueAgeAlarmSeconds,
      alarmTopic,
    });
    this.grantOnUploadData(props);
    this.notifyQueue(this.onUpload.queue, sourceBucketName, props);

    // -----------------------------------------------------------------------
    // 3. Outputs (same names as the SAM template's)
    // -----------------------------------------------------------------------
    const output = (name: string, value: string, description: string) =>
      new CfnOutput(this, name, { value, description });
    output('SourceBucketName', this.sourceBucket.bucketName, 'Upload here (under SourcePrefix) to trigger the function.');
    output('OutputBucketName', this.outputBucket.bucketName, 'Variants and manifests appear here (under OutputPrefix).');
    output('SourcePrefix', props.sourcePrefix, 'Key prefix that triggers the function (empty for the whole bucket).');
    output('OutputPrefix', props.outputPrefix, 'Key prefix of the outputs (MEDIAFLOW_OUTPUT_PREFIX).');
    output('OnUploadQueueUrl', this.onUpload.queue.queueUrl, 'The S3 notification queue the function consumes.');
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
    if (alarmTopic) output('AlarmTopicArn', alarmTopic.topicArn, 'SNS topic the alarms notify.');
  }

  /** Read the uploads, write the outputs, read back its own manifests: nothing else. */
  private grantOnUploadData(p: MediaflowParameters): void {
    const role = this.onUpload.role;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadUploads',
        actions: ['s3:GetObject'],
        resources: [this.sourceBucket.arnForObjects(`${p.sourcePrefix}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOutputs',
        actions: ['s3:PutObject'],
        resources: [this.outputBucket.arnForObjects(`${p.outputPrefix}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadOwnManifests',
        actions: ['s3:GetObject'],
        resources: [this.outputBucket.arnForObjects(`${p.outputPrefix}manifest/*`)],
      }),
    );
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

  /** s3:ObjectCreated:* on the source bucket (prefix/suffix filtered) -> queue. */
  private notifyQueue(queue: sqs.Queue, sourceBucketName: string, p: MediaflowParameters): void {
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
    const rules: s3.CfnBucket.FilterRuleProperty[] = [];
    if (p.sourcePrefix) rules.push({ name: 'prefix', value: p.sourcePrefix });
    if (p.sourceSuffix) rules.push({ name: 'suffix', value: p.sourceSuffix });
    const cfnBucket = this.sourceBucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: queue.queueArn,
          filter: rules.length > 0 ? { s3Key: { rules } } : undefined,
        },
      ],
    };
    // S3 sends a test message when the notification is created: the queue
    // policy must exist first.
    const queuePolicy = queue.node.tryFindChild('Policy') as sqs.QueuePolicy | undefined;
    if (!queuePolicy) throw new Error('mediaflow: the queue has no resource policy');
    cfnBucket.addResourceDependency(queuePolicy.node.defaultChild as sqs.CfnQueuePolicy);
  }
}
