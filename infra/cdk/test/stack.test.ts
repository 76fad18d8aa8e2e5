/**
 * Security and wiring properties of the CDK stack, asserted on the
 * synthesized template (Template.fromStack; Rust bundling is skipped).
 */
import * as path from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { readVariantsConfigFile } from '../lib/app';
import { DEFAULTS } from '../lib/parameters';
import { zipEntryNames } from '../lib/ffmpeg-layer';
import { canonicalModel, type Json, REPO_ROOT, stableStringify, synthCdk, writeTestZip } from './cfn';

const LAYER = 'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg:3';

/**
 * The source bucket's notifications, as "event -> queue [prefix]" lines
 * (sorted). Each notification may have a prefix rule and nothing else.
 */
const routes = (model: Json): string[] =>
  model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations.map((c: Json) => {
    expect(Object.keys(c).sort()).toEqual(c.Filter ? ['Event', 'Filter', 'Queue'] : ['Event', 'Queue']);
    if (!c.Filter) return `${c.Event} -> ${c.Queue}`;
    expect(c.Filter).toEqual({ S3Key: { Rules: [{ Name: 'prefix', Value: expect.any(String) }] } });
    return `${c.Event} -> ${c.Queue} ${c.Filter.S3Key.Rules[0].Value}`;
  }).sort();
/** Statements sorted as canonicalStatements sorts them. */
const sortStatements = (statements: Json[]): Json[] =>
  [...statements].sort((a, b) => stableStringify(a).localeCompare(stableStringify(b)));

const resourcesOf = (t: Template, type: string): [string, Json][] => Object.entries(t.findResources(type));
/** Every IAM statement in the template: roles' inline policies and AWS::IAM::Policy resources. */
const iamStatements = (t: Template): Json[] => [
  ...resourcesOf(t, 'AWS::IAM::Policy').flatMap(([, r]) => r.Properties.PolicyDocument.Statement),
  ...resourcesOf(t, 'AWS::IAM::Role').flatMap(([, r]) =>
    (r.Properties.Policies ?? []).flatMap((p: Json) => p.PolicyDocument.Statement),
  ),
];

describe('CDK stack, default parameters', () => {
  const t = synthCdk();
  const model = canonicalModel(t.toJSON());

  it('has exactly the expected resources', () => {
    const types = Object.values<Json>(t.toJSON().Resources)
      .map((r) => r.Type)
      .sort();
    expect(types).toEqual(
      [
        'AWS::CloudFront::CachePolicy',
        'AWS::CloudFront::Distribution',
        'AWS::CloudFront::OriginAccessControl',
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Dashboard',
        'AWS::IAM::Policy',
        'AWS::IAM::Role',
        'AWS::Lambda::EventSourceMapping',
        'AWS::Lambda::Function',
        'AWS::Logs::LogGroup',
        // Source, output and access logs.
        'AWS::S3::Bucket',
        'AWS::S3::Bucket',
        'AWS::S3::Bucket',
        'AWS::S3::BucketPolicy',
        'AWS::S3::BucketPolicy',
        'AWS::S3::BucketPolicy',
        'AWS::SQS::Queue',
        'AWS::SQS::Queue',
        'AWS::SQS::QueuePolicy',
        'AWS::SQS::QueuePolicy',
      ].sort(),
    );
    // No CDK helper functions (bucket-notification or auto-delete custom resources).
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('Custom::S3BucketNotifications', 0);
  });

  it('encrypts every bucket, blocks public access and disables ACLs (but for CloudFront\'s log delivery)', () => {
    const buckets = resourcesOf(t, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(3);
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      // CloudFront's standard logs (legacy) are delivered through an ACL grant.
      expect(bucket.Properties.OwnershipControls).toEqual({
        Rules: [{ ObjectOwnership: id.startsWith('AccessLog') ? 'BucketOwnerPreferred' : 'BucketOwnerEnforced' }],
      });
      expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual({
        Id: 'abort-incomplete-multipart-uploads',
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      });
      expect(bucket.DeletionPolicy).toBe('Retain');
    }
  });

  it('versions the source bucket only, and expires old versions', () => {
    const source = model.resources.SourceBucket;
    const output = model.resources.OutputBucket;
    expect(source.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(source.LifecycleConfiguration.Rules).toContainEqual({
      Id: 'expire-noncurrent-versions',
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: DEFAULTS.NoncurrentVersionDays },
    });
    expect(output.VersioningConfiguration).toBeUndefined();
  });

  it('denies non-TLS access to every bucket, queue and topic', () => {
    const tlsDeny = (resource: string[]) => ({
      Effect: 'Deny',
      Principal: '*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Resource: resource,
    });
    expect(model.resources.SourceBucketPolicy).toEqual([
      { ...tlsDeny(['${SourceBucket.Arn}', '${SourceBucket.Arn}/*']), Action: ['s3:*'] },
    ]);
    expect(model.resources.OutputBucketPolicy).toContainEqual({
      ...tlsDeny(['${OutputBucket.Arn}', '${OutputBucket.Arn}/*']),
      Action: ['s3:*'],
    });
    expect(model.resources.AccessLogBucketPolicy).toContainEqual({
      ...tlsDeny(['${AccessLogBucket.Arn}', '${AccessLogBucket.Arn}/*']),
      Action: ['s3:*'],
    });
    expect(model.resources.DeadLetterQueuePolicy).toEqual([
      { ...tlsDeny(['${DeadLetterQueue.Arn}']), Action: ['sqs:*'] },
    ]);
    expect(model.resources.QueuePolicy).toContainEqual({ ...tlsDeny(['${Queue.Arn}']), Action: ['sqs:*'] });
  });

  it('grants no wildcard S3 actions or resources, and no managed policies', () => {
    const statements = iamStatements(t);
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      const actions: string[] = [s.Action].flat();
      const resources: Json[] = [s.Resource].flat();
      expect(actions).not.toContain('*');
      for (const action of actions) {
        expect(action, JSON.stringify(s)).not.toMatch(/\*/);
      }
      expect(resources, JSON.stringify(s)).not.toContain('*');
    }
    for (const [, role] of resourcesOf(t, 'AWS::IAM::Role')) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('reads the uploads; writes, reads and deletes the outputs; modifies no upload; sends to no queue', () => {
    const s3 = model.resources.RoleStatements.filter((s: Json) => s.Action.some((a: string) => a.startsWith('s3:')));
    expect(s3).toEqual(
      sortStatements([
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${OutputBucket.Arn}', '${SourceBucket.Arn}'] },
      ]),
    );
    const other = model.resources.RoleStatements.filter((s: Json) => !s.Action.some((a: string) => a.startsWith('s3:')));
    expect(other).toEqual(
      sortStatements([
        { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['${LogGroup.Arn}'] },
        {
          Effect: 'Allow',
          Action: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
          ],
          Resource: ['${Queue.Arn}'],
        },
      ]),
    );
  });

  it('sends every object created or removed in the source bucket to the queue, with no filter', () => {
    expect(Object.keys(model.resources.SourceBucket.NotificationConfiguration)).toEqual(['QueueConfigurations']);
    // photo.Jpeg, IMG_0001 and clip.Mp4 included: on-upload decides by the bytes.
    expect(routes(model)).toEqual(['s3:ObjectCreated:* -> ${Queue.Arn}', 's3:ObjectRemoved:* -> ${Queue.Arn}']);
    expect(JSON.stringify(t.toJSON())).not.toMatch(/"suffix"/i);
    expect(model.resources.QueuePolicy).toContainEqual({
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: ['sqs:SendMessage'],
      Resource: ['${Queue.Arn}'],
      Condition: {
        ArnEquals: { 'aws:SourceArn': 'arn:${AWS::Partition}:s3:::mediaflow-source-${StackUuid}' },
        StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}' },
      },
    });
    // The bucket's name is the one the queue policy allows, and the policy exists first.
    expect(model.resources.SourceBucket.BucketName).toBe('mediaflow-source-${StackUuid}');
    const [, bucket] = resourcesOf(t, 'AWS::S3::Bucket').find(([, b]) => b.Properties.NotificationConfiguration)!;
    const [queuePolicyId] = resourcesOf(t, 'AWS::SQS::QueuePolicy').find(
      ([, p]) => JSON.stringify(p).includes('s3.amazonaws.com'),
    )!;
    expect(bucket.DependsOn).toContain(queuePolicyId);
  });

  it('has a dead-letter queue with a redrive policy, both encrypted', () => {
    expect(model.resources.Queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: '${DeadLetterQueue.Arn}',
      maxReceiveCount: 5,
    });
    expect(model.resources.Queue.SqsManagedSseEnabled).toBe(true);
    expect(model.resources.DeadLetterQueue.SqsManagedSseEnabled).toBe(true);
    expect(model.resources.DeadLetterQueue.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(model.resources.Queue.MessageRetentionPeriod).toBeLessThan(
      model.resources.DeadLetterQueue.MessageRetentionPeriod,
    );
  });

  it('feeds the function from the queue with batch item failures, batch size and maximum concurrency', () => {
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OnUploadQueue'), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 4,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    expect(model.resources.EventSourceMapping.EventSourceArn).toBe('${Queue.Arn}');
    expect(model.resources.EventSourceMapping.FunctionName).toBe('${Function}');
  });

  it('runs on arm64, provided.al2023, with JSON logs in a log group with retention', () => {
    const fn = model.resources.Function;
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Runtime).toBe('provided.al2023');
    expect(fn.Handler).toBe('bootstrap');
    expect(fn.MemorySize).toBe(2048);
    expect(fn.Timeout).toBe(60);
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
    expect(fn.LoggingConfig).toEqual({
      LogFormat: 'JSON',
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'INFO',
      LogGroup: '${LogGroup}',
    });
    expect(model.resources.LogGroup.RetentionInDays).toBe(30);
  });

  it('sets the queue visibility timeout to 6x the function timeout', () => {
    expect(model.resources.Queue.VisibilityTimeout).toBe(6 * model.resources.Function.Timeout);
  });

  it('passes the output bucket and prefix to the function, and no video queue', () => {
    expect(model.resources.Function.Environment.Variables).toStrictEqual({
      MEDIAFLOW_OUTPUT_BUCKET: '${OutputBucket}',
      MEDIAFLOW_OUTPUT_PREFIX: '',
      MEDIAFLOW_CONFIG: '',
      MEDIAFLOW_VIDEO_QUEUE_URL: '',
      MEDIAFLOW_ANIMATED_GIF: '',
      MEDIAFLOW_S3_PATH_STYLE: '',
      MEDIAFLOW_PUBLIC_BASE_URL: 'https://${DeliveryDistribution.DomainName}',
    });
  });

  it('alarms on the dead-letter queue, function errors and queue age, without actions by default', () => {
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.map((a) => `${a.Namespace}/${a.MetricName}`).sort()).toEqual([
      'AWS/Lambda/Errors',
      'AWS/SQS/ApproximateAgeOfOldestMessage',
      'AWS/SQS/ApproximateNumberOfMessagesVisible',
    ]);
    const dlq = model.resources.ApproximateNumberOfMessagesVisibleAlarm;
    expect(dlq.Dimensions).toEqual([{ Name: 'QueueName', Value: '${DeadLetterQueue.QueueName}' }]);
    expect(dlq.Threshold).toBe(0);
    expect(dlq.ComparisonOperator).toBe('GreaterThanThreshold');
    expect(model.resources.ApproximateAgeOfOldestMessageAlarm.Dimensions).toEqual([
      { Name: 'QueueName', Value: '${Queue.QueueName}' },
    ]);
    expect(model.resources.ApproximateAgeOfOldestMessageAlarm.Threshold).toBe(900);
    for (const alarm of alarms) expect(alarm.AlarmActions).toBeUndefined();
    t.resourceCountIs('AWS::SNS::Topic', 0);
  });

  it('outputs bucket names, queue URLs and the function ARN', () => {
    expect(model.outputs).toEqual({
      SourceBucketName: '${SourceBucket}',
      OutputBucketName: '${OutputBucket}',
      SourcePrefix: '',
      OutputPrefix: '',
      OnUploadQueueUrl: '${Queue}',
      OnUploadDeadLetterQueueUrl: '${DeadLetterQueue}',
      OnUploadDeadLetterQueueArn: '${DeadLetterQueue.Arn}',
      OnUploadFunctionArn: '${Function.Arn}',
      OnUploadLogGroupName: '${LogGroup}',
      DeliveryUrl: 'https://${DeliveryDistribution.DomainName}',
      DeliveryDistributionId: '${DeliveryDistribution}',
      DeliveryDomainName: '${DeliveryDistribution.DomainName}',
      AccessLogBucketName: '${AccessLogBucket}',
      DashboardUrl:
        'https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards/dashboard/${Dashboard}',
    });
  });
});

describe('CDK stack, single bucket with prefixes and alarm email', () => {
  const t = synthCdk({
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
  });
  const model = canonicalModel(t.toJSON());

  it('has one bucket that is source and output (and the access-log bucket)', () => {
    t.resourceCountIs('AWS::S3::Bucket', 2);
    expect(Object.keys(model.resources).filter((n) => n.endsWith('Bucket')).sort()).toEqual([
      'AccessLogBucket',
      'SourceBucket',
    ]);
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_OUTPUT_BUCKET).toBe('${SourceBucket}');
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_OUTPUT_PREFIX).toBe('media/');
    expect(model.outputs.OutputBucketName).toBe('${SourceBucket}');
  });

  it('filters both notifications by the source prefix only, so outputs never trigger the function', () => {
    expect(routes(model)).toEqual([
      's3:ObjectCreated:* -> ${Queue.Arn} uploads/',
      's3:ObjectRemoved:* -> ${Queue.Arn} uploads/',
    ]);
    expect(model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations).toContainEqual({
      Event: 's3:ObjectRemoved:*',
      Queue: '${Queue.Arn}',
      Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'uploads/' }] } },
    });
  });

  it('scopes S3 permissions to the prefixes: nothing under uploads/ may be written or deleted', () => {
    const s3 = model.resources.RoleStatements.filter((s: Json) => s.Action.some((a: string) => a.startsWith('s3:')));
    expect(s3).toEqual(
      sortStatements([
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/uploads/*'] },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${SourceBucket.Arn}'] },
      ]),
    );
  });

  it('creates a TLS-only alarm topic with the email subscribed, used by every alarm', () => {
    t.resourceCountIs('AWS::SNS::Topic', 1);
    expect(model.resources.AlarmSubscriptions).toEqual([{ Protocol: 'email', Endpoint: 'ops@example.com' }]);
    expect(model.resources.AlarmTopicPolicy).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    for (const [, alarm] of resourcesOf(t, 'AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions).toHaveLength(1);
      expect(alarm.Properties.OKActions).toHaveLength(1);
    }
    expect(model.outputs.AlarmTopicArn).toBe('${AlarmTopic}');
  });
});

describe('CDK stack, other parameters', () => {
  it('builds x86_64 with a longer timeout, reserved concurrency and an existing alarm topic', () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:ops';
    const t = synthCdk({
      Architecture: 'x86_64',
      Timeout: '300',
      MemorySize: '3008',
      ReservedConcurrency: '20',
      MaximumConcurrency: '20',
      BatchSize: '1',
      AlarmTopicArn: topic,
    });
    const model = canonicalModel(t.toJSON());
    expect(model.resources.Function.Architectures).toEqual(['x86_64']);
    expect(model.resources.Function.MemorySize).toBe(3008);
    expect(model.resources.Function.ReservedConcurrentExecutions).toBe(20);
    expect(model.resources.Queue.VisibilityTimeout).toBe(1800);
    expect(model.resources.EventSourceMapping.BatchSize).toBe(1);
    expect(model.resources.EventSourceMapping.ScalingConfig).toEqual({ MaximumConcurrency: 20 });
    t.resourceCountIs('AWS::SNS::Topic', 0);
    for (const [, alarm] of resourcesOf(t, 'AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions).toEqual([topic]);
    }
  });

  it.each([
    [{ Timeout: '45' }, /Timeout=.*must be one of/],
    [{ MemorySize: '256' }, /MemorySize=.*at least 512/],
    [{ Architecture: 'arm' }, /Architecture=.*must be one of/],
    [{ OutputPrefix: 'media' }, /OutputPrefix=/],
    [{ BucketNamePrefix: 'Media' }, /BucketNamePrefix=/],
    [{ BucketMode: 'single' }, /needs both SourcePrefix/],
    [{ BucketMode: 'single', SourcePrefix: 'media/in/', OutputPrefix: 'media/' }, /overlap/],
    [{ BucketMode: 'single', SourcePrefix: 'up/', OutputPrefix: 'up/' }, /overlap/],
    [{ VariantsConfig: 'x'.repeat(3501) }, /VariantsConfig=.*longer than 3500/],
    [{ SourceSuffix: '.jpg' }, /SourceSuffix was removed/],
    [{ FfmpegLayerArn: 'arn:aws:lambda:us-east-1:123456789012:layer:ffmpeg' }, /FfmpegLayerArn=/],
    [{ FfmpegLayerArn: 'arn:aws:lambda:us-east-1:123456789012:function:ffmpeg' }, /FfmpegLayerArn=/],
    [{ AnimatedGifToVideo: 'yes' }, /AnimatedGifToVideo=.*must be one of false, true/],
    [{ TranscodeMemorySize: '64' }, /TranscodeMemorySize=.*at least 128/],
    [{ TranscodeMemorySize: '10241' }, /TranscodeMemorySize=.*at most 10240/],
    [{ TranscodeTimeout: '1000' }, /TranscodeTimeout=.*must be one of/],
    [{ TranscodeEphemeralStorage: '256' }, /TranscodeEphemeralStorage=.*at least 512/],
    [{ TranscodeEphemeralStorage: '20480' }, /TranscodeEphemeralStorage=.*at most 10240/],
    [{ TranscodeBatchSize: '0' }, /TranscodeBatchSize=.*at least 1/],
    [{ TranscodeMaximumConcurrency: '1' }, /TranscodeMaximumConcurrency=.*at least 2/],
    [{ Delivery: 's3' }, /Delivery=.*must be one of cloudfront, none/],
    [{ AccessLogs: 'yes' }, /AccessLogs=.*must be one of false, true/],
    [{ AccessLogRetentionDays: '0' }, /AccessLogRetentionDays=.*at least 1/],
    [{ Tracing: 'PassThrough' }, /Tracing=.*must be one of Disabled, Active/],
  ])('rejects %j', (context, message) => {
    expect(() => synthCdk(context)).toThrow(message);
  });

  it('takes the variants config from a file, without comments, within the environment limit', () => {
    const file = path.join(REPO_ROOT, 'mediaflow.toml');
    const config = readVariantsConfigFile(file);
    expect(config).toContain('[[variant]]');
    expect(config).not.toMatch(/^\s*#/m);
    expect(config.length).toBeLessThan(3500);
    const model = canonicalModel(synthCdk({ VariantsConfigFile: file }).toJSON());
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_CONFIG).toBe(config);
  });
});

describe('CDK stack with the ffmpeg layer (video)', () => {
  const t = synthCdk({ FfmpegLayerArn: LAYER });
  const model = canonicalModel(t.toJSON());

  it('adds a second worker: queue, dead-letter queue, role, log group, function, event source mapping, alarms', () => {
    const types = Object.values<Json>(t.toJSON().Resources)
      .map((r) => r.Type)
      .sort();
    const worker = [
      'AWS::CloudWatch::Alarm',
      'AWS::CloudWatch::Alarm',
      'AWS::CloudWatch::Alarm',
      'AWS::IAM::Policy',
      'AWS::IAM::Role',
      'AWS::Lambda::EventSourceMapping',
      'AWS::Lambda::Function',
      'AWS::Logs::LogGroup',
      'AWS::SQS::Queue',
      'AWS::SQS::Queue',
      'AWS::SQS::QueuePolicy',
      'AWS::SQS::QueuePolicy',
    ];
    const shared = [
      ...['AWS::S3::Bucket', 'AWS::S3::BucketPolicy'].flatMap((type) => [type, type, type]),
      'AWS::CloudFront::CachePolicy',
      'AWS::CloudFront::Distribution',
      'AWS::CloudFront::OriginAccessControl',
      'AWS::CloudWatch::Dashboard',
    ];
    expect(types).toEqual([...worker, ...worker, ...shared].sort());
    t.resourceCountIs('Custom::S3BucketNotifications', 0);
    t.resourceCountIs('AWS::Lambda::LayerVersion', 0); // the layer is the caller's, referenced by ARN
  });

  it('runs transcode with the layer, 3008 MB, 900 s, 4 GB of /tmp, arm64 and JSON logs in its own log group', () => {
    const fn = model.resources.TranscodeFunction;
    expect(fn.Layers).toEqual([LAYER]);
    expect(fn.MemorySize).toBe(3008);
    expect(fn.Timeout).toBe(900);
    expect(fn.EphemeralStorage).toEqual({ Size: 4096 });
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Runtime).toBe('provided.al2023');
    expect(fn.Handler).toBe('bootstrap');
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
    expect(fn.LoggingConfig).toEqual({
      LogFormat: 'JSON',
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'INFO',
      LogGroup: '${TranscodeLogGroup}',
    });
    expect(model.resources.TranscodeLogGroup.RetentionInDays).toBe(30);
    expect(fn.Role).toBe('${TranscodeRole.Arn}');
    // on-upload keeps Lambda's defaults for both.
    expect(model.resources.Function.Layers).toBeUndefined();
    expect(model.resources.Function.EphemeralStorage).toBeUndefined();
  });

  it('passes the output bucket, prefix, config and the layer\'s ffmpeg to transcode', () => {
    expect(model.resources.TranscodeFunction.Environment.Variables).toEqual({
      MEDIAFLOW_OUTPUT_BUCKET: '${OutputBucket}',
      MEDIAFLOW_OUTPUT_PREFIX: '',
      MEDIAFLOW_CONFIG: '',
      MEDIAFLOW_FFMPEG: '/opt/bin/ffmpeg',
      MEDIAFLOW_FFPROBE: '',
      MEDIAFLOW_ANIMATED_GIF: '',
      MEDIAFLOW_S3_PATH_STYLE: '',
      MEDIAFLOW_PUBLIC_BASE_URL: 'https://${DeliveryDistribution.DomainName}',
    });
  });

  it('feeds transcode from its own queue: 1 per batch, 5 at once, batch item failures, 6x visibility, DLQ', () => {
    expect(model.resources.TranscodeEventSourceMapping).toMatchObject({
      EventSourceArn: '${TranscodeQueue.Arn}',
      FunctionName: '${TranscodeFunction}',
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    expect(model.resources.TranscodeQueue.VisibilityTimeout).toBe(6 * 900);
    expect(model.resources.TranscodeQueue.RedrivePolicy).toEqual({
      deadLetterTargetArn: '${TranscodeDeadLetterQueue.Arn}',
      maxReceiveCount: 5,
    });
    expect(model.resources.TranscodeQueue.SqsManagedSseEnabled).toBe(true);
    expect(model.resources.TranscodeDeadLetterQueue.SqsManagedSseEnabled).toBe(true);
    expect(model.resources.TranscodeDeadLetterQueue.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    // The image worker is unchanged.
    expect(model.resources.EventSourceMapping).toMatchObject({
      BatchSize: 4,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('sends everything to on-upload, which forwards videos to transcode: no S3 notification for the transcode queue', () => {
    expect(routes(model)).toEqual(['s3:ObjectCreated:* -> ${Queue.Arn}', 's3:ObjectRemoved:* -> ${Queue.Arn}']);
    // on-upload: the transcode queue's URL, and SendMessage on that queue only.
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_VIDEO_QUEUE_URL).toBe('${TranscodeQueue}');
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_ANIMATED_GIF).toBe('');
    const sends = model.resources.RoleStatements.filter((s: Json) => s.Action.some((a: string) => a.includes('Send')));
    expect(sends).toEqual([{ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['${TranscodeQueue.Arn}'] }]);
    // The transcode queue's policy only denies plain HTTP: no service may send.
    expect(model.resources.TranscodeQueuePolicy).toEqual([
      {
        Effect: 'Deny',
        Principal: '*',
        Action: ['sqs:*'],
        Resource: ['${TranscodeQueue.Arn}'],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ]);
    // The bucket waits for on-upload's queue policy (S3 checks it when it saves the notifications).
    const [, bucket] = resourcesOf(t, 'AWS::S3::Bucket').find(([, b]) => b.Properties.NotificationConfiguration)!;
    const policies = resourcesOf(t, 'AWS::SQS::QueuePolicy')
      .filter(([, p]) => JSON.stringify(p).includes('s3.amazonaws.com'))
      .map(([id]) => id);
    expect(policies).toEqual([expect.stringMatching(/^OnUploadQueuePolicy/)]);
    expect(bucket.DependsOn).toEqual(policies);
  });

  it('gives transcode least privilege: read uploads, write/read/delete outputs, its queue and log group only', () => {
    const statements = iamStatements(t);
    for (const s of statements) {
      for (const action of [s.Action].flat()) expect(action, JSON.stringify(s)).not.toMatch(/\*/);
      expect([s.Resource].flat(), JSON.stringify(s)).not.toContain('*');
    }
    expect(model.resources.TranscodeRoleStatements).toEqual(
      sortStatements([
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${OutputBucket.Arn}', '${SourceBucket.Arn}'] },
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: ['${TranscodeLogGroup.Arn}'],
        },
        {
          Effect: 'Allow',
          Action: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
          ],
          Resource: ['${TranscodeQueue.Arn}'],
        },
      ]),
    );
    // on-upload may only send to the transcode queue, not consume it or write its logs.
    expect(
      model.resources.RoleStatements.filter((s: Json) => JSON.stringify(s).includes('Transcode')),
    ).toEqual([{ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['${TranscodeQueue.Arn}'] }]);
  });

  it('alarms on the transcode dead-letter queue, errors and queue age too', () => {
    expect(model.resources.TranscodeApproximateNumberOfMessagesVisibleAlarm.Dimensions).toEqual([
      { Name: 'QueueName', Value: '${TranscodeDeadLetterQueue.QueueName}' },
    ]);
    expect(model.resources.TranscodeErrorsAlarm.Dimensions).toEqual([
      { Name: 'FunctionName', Value: '${TranscodeFunction}' },
    ]);
    expect(model.resources.TranscodeApproximateAgeOfOldestMessageAlarm.Dimensions).toEqual([
      { Name: 'QueueName', Value: '${TranscodeQueue.QueueName}' },
    ]);
    expect(model.resources.TranscodeApproximateAgeOfOldestMessageAlarm.Threshold).toBe(900);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 6);
  });

  it('outputs the transcode queue URLs, dead-letter queue ARN, function ARN and log group', () => {
    expect(model.outputs).toMatchObject({
      TranscodeQueueUrl: '${TranscodeQueue}',
      TranscodeDeadLetterQueueUrl: '${TranscodeDeadLetterQueue}',
      TranscodeDeadLetterQueueArn: '${TranscodeDeadLetterQueue.Arn}',
      TranscodeFunctionArn: '${TranscodeFunction.Arn}',
      TranscodeLogGroupName: '${TranscodeLogGroup}',
      OnUploadQueueUrl: '${Queue}',
    });
  });
});

describe('CDK stack with an ffmpeg layer it publishes from a zip (infra/layers/ffmpeg/build)', () => {
  const ARM64_ZIP = ['bin/ffmpeg', 'bin/ffprobe', 'ffmpeg/lib/ld-linux-aarch64.so.1', 'ffmpeg/lib/libc.so.6'];
  const X86_64_ZIP = ['bin/ffmpeg', 'bin/ffprobe', 'ffmpeg/lib/ld-linux-x86-64.so.2', 'ffmpeg/lib/libc.so.6'];

  it('FfmpegLayerZip: an AWS::Lambda::LayerVersion from the zip (an asset), arm64, provided.al2023, GPL, used by transcode', () => {
    const zip = writeTestZip('ffmpeg-arm64.zip', ARM64_ZIP);
    expect(zipEntryNames(zip)).toEqual(ARM64_ZIP);
    const t = synthCdk({ FfmpegLayerZip: zip });
    const layers = resourcesOf(t, 'AWS::Lambda::LayerVersion');
    expect(layers).toHaveLength(1);
    const [layerId, layer] = layers[0];
    expect(layer.Properties).toMatchObject({
      CompatibleArchitectures: ['arm64'],
      CompatibleRuntimes: ['provided.al2023'],
      LicenseInfo: 'GPL-3.0-or-later',
      Content: { S3Bucket: expect.anything(), S3Key: expect.stringMatching(/^[0-9a-f]{64}\.zip$/) },
    });
    expect(layer.DeletionPolicy).toBe('Delete');
    expect(layer.UpdateReplacePolicy).toBe('Delete');
    const functions = resourcesOf(t, 'AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    const users = functions.filter(([, fn]) => fn.Properties.Layers !== undefined);
    expect(users).toHaveLength(1);
    expect(users[0][0]).toMatch(/^Transcode/);
    expect(users[0][1].Properties.Layers).toEqual([{ Ref: layerId }]);
    const model = canonicalModel(t.toJSON());
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_VIDEO_QUEUE_URL).toBe('${TranscodeQueue}');
  });

  it('FfmpegLayerZip for x86_64: a layer for x86_64 only', () => {
    const zip = writeTestZip('ffmpeg-x86_64.zip', X86_64_ZIP);
    const model = canonicalModel(synthCdk({ FfmpegLayerZip: zip, Architecture: 'x86_64' }).toJSON());
    expect(model.resources.TranscodeFfmpegLayer.CompatibleArchitectures).toEqual(['x86_64']);
    expect(model.resources.TranscodeFunction.Architectures).toEqual(['x86_64']);
    expect(model.resources.TranscodeFunction.Layers).toEqual(['${TranscodeFfmpegLayer}']);
  });

  it('FfmpegLayerZipBucket and FfmpegLayerZipKey: the same layer from a zip in S3', () => {
    const model = canonicalModel(
      synthCdk({ FfmpegLayerZipBucket: 'mediaflow-artifacts', FfmpegLayerZipKey: 'layers/ffmpeg-arm64.zip' }).toJSON(),
    );
    expect(model.resources.TranscodeFfmpegLayer).toMatchObject({
      Content: { S3Bucket: 'mediaflow-artifacts', S3Key: 'layers/ffmpeg-arm64.zip' },
      CompatibleArchitectures: ['arm64'],
      CompatibleRuntimes: ['provided.al2023'],
      LicenseInfo: 'GPL-3.0-or-later',
    });
    expect(model.resources.TranscodeFunction.Layers).toEqual(['${TranscodeFfmpegLayer}']);
  });

  it('refuses an ARN and a zip together, with a message that says which to give', () => {
    const zip = writeTestZip('ffmpeg-arm64.zip', ARM64_ZIP);
    expect(() => synthCdk({ FfmpegLayerArn: LAYER, FfmpegLayerZip: zip })).toThrow(
      'mediaflow: give one ffmpeg layer: FfmpegLayerArn (an existing layer), FfmpegLayerZip (a local zip) or ' +
        'FfmpegLayerZipBucket with FfmpegLayerZipKey (a zip in S3), not FfmpegLayerArn and FfmpegLayerZip',
    );
  });

  it.each([
    [{ FfmpegLayerZipBucket: 'mediaflow-artifacts' }, /FfmpegLayerZipBucket and FfmpegLayerZipKey go together/],
    [{ FfmpegLayerZipKey: 'ffmpeg-arm64.zip' }, /go together/],
    [{ FfmpegLayerZipBucket: 'Bad_Bucket', FfmpegLayerZipKey: 'a.zip' }, /FfmpegLayerZipBucket=/],
    [{ FfmpegLayerZipBucket: 'mediaflow-artifacts', FfmpegLayerZipKey: '/a.zip' }, /FfmpegLayerZipKey=/],
    [{ FfmpegLayerZip: '/nonexistent/ffmpeg-arm64.zip' }, /FfmpegLayerZip=.*no such file .*infra\/layers\/ffmpeg\/build/],
  ])('rejects %j', (context, message) => {
    expect(() => synthCdk(context)).toThrow(message);
  });

  it('rejects a zip for the other architecture, or without bin/ffmpeg, or that is no zip', () => {
    const arm64 = writeTestZip('ffmpeg-arm64.zip', ARM64_ZIP);
    expect(() => synthCdk({ FfmpegLayerZip: arm64, Architecture: 'x86_64' })).toThrow(
      /a layer for arm64 .*but Architecture=x86_64/,
    );
    const x86 = writeTestZip('ffmpeg-x86_64.zip', X86_64_ZIP);
    expect(() => synthCdk({ FfmpegLayerZip: x86 })).toThrow(/a layer for x86_64 .*but Architecture=arm64/);
    const noFfmpeg = writeTestZip('layer.zip', ['bin/ffprobe']);
    expect(() => synthCdk({ FfmpegLayerZip: noFfmpeg })).toThrow(/no bin\/ffmpeg in the zip/);
    expect(() => synthCdk({ FfmpegLayerZip: path.join(REPO_ROOT, 'infra', 'README.md') })).toThrow(/not a \.zip file/);
    expect(() => synthCdk({ FfmpegLayerZip: path.join(REPO_ROOT, 'infra') })).toThrow(/not a file/);
  });
});

describe('CDK stack, AnimatedGifToVideo', () => {
  it('true with a layer: both functions are told so (on-upload forwards animated GIFs)', () => {
    const t = synthCdk({
      FfmpegLayerArn: LAYER,
      AnimatedGifToVideo: 'true',
      BucketMode: 'single',
      SourcePrefix: 'uploads/',
      OutputPrefix: 'media/',
      TranscodeMemorySize: '10240',
      TranscodeTimeout: '600',
      TranscodeEphemeralStorage: '10240',
      TranscodeBatchSize: '2',
      TranscodeMaximumConcurrency: '2',
      Architecture: 'x86_64',
    });
    const model = canonicalModel(t.toJSON());
    expect(routes(model)).toEqual([
      's3:ObjectCreated:* -> ${Queue.Arn} uploads/',
      's3:ObjectRemoved:* -> ${Queue.Arn} uploads/',
    ]);
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_ANIMATED_GIF).toBe('true');
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_VIDEO_QUEUE_URL).toBe('${TranscodeQueue}');
    const fn = model.resources.TranscodeFunction;
    expect(fn.Environment.Variables.MEDIAFLOW_ANIMATED_GIF).toBe('true');
    expect(fn.Environment.Variables.MEDIAFLOW_OUTPUT_BUCKET).toBe('${SourceBucket}');
    expect(fn.Environment.Variables.MEDIAFLOW_OUTPUT_PREFIX).toBe('media/');
    expect(fn.Architectures).toEqual(['x86_64']);
    expect(fn.MemorySize).toBe(10240);
    expect(fn.EphemeralStorage).toEqual({ Size: 10240 });
    expect(fn.Timeout).toBe(600);
    expect(model.resources.TranscodeQueue.VisibilityTimeout).toBe(3600);
    expect(model.resources.TranscodeEventSourceMapping).toMatchObject({
      BatchSize: 2,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    const s3 = model.resources.TranscodeRoleStatements.filter((s: Json) =>
      s.Action.some((a: string) => a.startsWith('s3:')),
    );
    expect(s3).toEqual(
      sortStatements([
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/uploads/*'] },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: ['${SourceBucket.Arn}/media/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${SourceBucket.Arn}'] },
      ]),
    );
  });

  it('true without a layer: no transcode function, on-upload is not told to forward GIFs (nowhere to go)', () => {
    const model = canonicalModel(synthCdk({ AnimatedGifToVideo: 'true' }).toJSON());
    expect(Object.keys(model.resources).filter((n) => n.startsWith('Transcode'))).toEqual([]);
    expect(routes(model)).toEqual(['s3:ObjectCreated:* -> ${Queue.Arn}', 's3:ObjectRemoved:* -> ${Queue.Arn}']);
    expect(model.resources.Function.Environment.Variables).toMatchObject({
      MEDIAFLOW_ANIMATED_GIF: '',
      MEDIAFLOW_VIDEO_QUEUE_URL: '',
    });
    expect(JSON.stringify(model.resources.RoleStatements)).not.toContain('SendMessage');
  });

  it('false (the default) with a layer: on-upload makes stills of GIFs, MEDIAFLOW_ANIMATED_GIF is empty in both', () => {
    const model = canonicalModel(synthCdk({ FfmpegLayerArn: LAYER, AnimatedGifToVideo: 'false' }).toJSON());
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_ANIMATED_GIF).toBe('');
    expect(model.resources.TranscodeFunction.Environment.Variables.MEDIAFLOW_ANIMATED_GIF).toBe('');
  });
});

describe('CDK stack, backfill at scale', () => {
  it('is off by default: no inventory, no state machine', () => {
    const t = synthCdk();
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 0);
    expect(JSON.stringify(t.toJSON())).not.toMatch(/InventoryConfigurations|Backfill/);
  });

  it('grants "*" only for the log delivery actions, which take no resource ARN', () => {
    const t = synthCdk({ BackfillAtScale: 'true' });
    const wildcards = iamStatements(t).filter((s) => [s.Resource].flat().includes('*'));
    expect(wildcards.map((s) => s.Sid)).toEqual(['DeliverLogs']);
    for (const action of [wildcards[0].Action].flat()) expect(action).toMatch(/^logs:[A-Za-z]+$/);
  });

  it('creates the state machine after its role policy (Step Functions checks the log permissions)', () => {
    const t = synthCdk({ BackfillAtScale: 'true' });
    const [[policyId]] = resourcesOf(t, 'AWS::IAM::Policy').filter(([id]) => id.startsWith('BackfillRole'));
    const [[, machine]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    expect(machine.DependsOn).toContain(policyId);
    t.resourceCountIs('AWS::Lambda::Function', 1);
  });
});

describe('CDK stack, delivery (CloudFront, the default)', () => {
  const t = synthCdk({ FfmpegLayerArn: LAYER });
  const model = canonicalModel(t.toJSON());
  const [[distributionId, distribution]] = resourcesOf(t, 'AWS::CloudFront::Distribution');
  const config = distribution.Properties.DistributionConfig;

  it('signs its requests to the private output bucket with an origin access control (SigV4), no legacy OAI', () => {
    t.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    t.resourceCountIs('AWS::CloudFront::CloudFrontOriginAccessIdentity', 0);
    t.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: {
        OriginAccessControlOriginType: 's3',
        SigningBehavior: 'always',
        SigningProtocol: 'sigv4',
      },
    });
    expect(config.Origins).toHaveLength(1);
    const [origin] = config.Origins;
    expect(origin.OriginPath).toBeUndefined();
    expect(origin.S3OriginConfig).toEqual({ OriginAccessIdentity: '' });
    expect(origin.DomainName).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OutputBucket/), 'RegionalDomainName'] });
    expect(origin.OriginAccessControlId).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^DeliveryOriginAccessControl/), 'Id'],
    });
    expect(model.resources.OutputBucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  it('is HTTPS only, HTTP/2 and HTTP/3, compressed, GET and HEAD', () => {
    expect(config.HttpVersion).toBe('http2and3');
    expect(config.DefaultCacheBehavior).toMatchObject({
      ViewerProtocolPolicy: 'redirect-to-https',
      Compress: true,
      AllowedMethods: ['GET', 'HEAD'],
    });
    expect(config.CacheBehaviors).toBeUndefined();
  });

  it("caches as each object's Cache-Control says: MinTTL 0, a day without one, a year at most; path-only cache key", () => {
    const [[policyId, policy]] = resourcesOf(t, 'AWS::CloudFront::CachePolicy');
    expect(config.DefaultCacheBehavior.CachePolicyId).toEqual({ Ref: policyId });
    expect(policy.Properties.CachePolicyConfig).toMatchObject({
      MinTTL: 0,
      DefaultTTL: 86400,
      MaxTTL: 31536000,
      ParametersInCacheKeyAndForwardedToOrigin: {
        EnableAcceptEncodingGzip: true,
        EnableAcceptEncodingBrotli: true,
        CookiesConfig: { CookieBehavior: 'none' },
        HeadersConfig: { HeaderBehavior: 'none' },
        QueryStringsConfig: { QueryStringBehavior: 'none' },
      },
    });
  });

  it('may read only the outputs, and only as this distribution (AWS:SourceArn), never a failure record', () => {
    const statements = model.resources.OutputBucketPolicy.filter((s: Json) => JSON.stringify(s).includes('cloudfront'));
    expect(statements).toEqual(
      sortStatements([
        {
          Effect: 'Allow',
          Principal: { Service: 'cloudfront.amazonaws.com' },
          Action: ['s3:GetObject'],
          Resource: ['${OutputBucket.Arn}/*'],
          Condition: {
            StringEquals: {
              'AWS:SourceArn': 'arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${DeliveryDistribution}',
            },
          },
        },
        {
          Effect: 'Deny',
          Principal: { Service: 'cloudfront.amazonaws.com' },
          Action: ['s3:GetObject'],
          Resource: ['${OutputBucket.Arn}/failed/*.json'],
        },
      ]),
    );
    // Nothing for CloudFront in the source bucket's policy: no upload is served.
    expect(JSON.stringify(model.resources.SourceBucketPolicy)).not.toContain('cloudfront');
    // No listing through CloudFront.
    expect(JSON.stringify(statements)).not.toContain('ListBucket');
  });

  it('gives both functions MEDIAFLOW_PUBLIC_BASE_URL, the distribution\'s https://<domain> without a trailing slash', () => {
    for (const fn of ['Function', 'TranscodeFunction']) {
      expect(model.resources[fn].Environment.Variables.MEDIAFLOW_PUBLIC_BASE_URL, fn).toBe(
        'https://${DeliveryDistribution.DomainName}',
      );
    }
    const [, onUpload] = resourcesOf(t, 'AWS::Lambda::Function').find(([id]) => id.startsWith('OnUpload'))!;
    expect(onUpload.Properties.Environment.Variables.MEDIAFLOW_PUBLIC_BASE_URL).toEqual({
      'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distributionId, 'DomainName'] }]],
    });
  });

  it('outputs its URL, id and domain name', () => {
    expect(model.outputs).toMatchObject({
      DeliveryUrl: 'https://${DeliveryDistribution.DomainName}',
      DeliveryDistributionId: '${DeliveryDistribution}',
      DeliveryDomainName: '${DeliveryDistribution.DomainName}',
    });
  });

  it('in single-bucket mode serves only OutputPrefix of the one bucket, never the uploads', () => {
    const single = canonicalModel(
      synthCdk({ BucketMode: 'single', SourcePrefix: 'uploads/', OutputPrefix: 'media/' }).toJSON(),
    );
    const statements = single.resources.SourceBucketPolicy.filter((s: Json) => JSON.stringify(s).includes('cloudfront'));
    expect(statements.map((s: Json) => `${s.Effect} ${s.Resource}`).sort()).toEqual([
      'Allow ${SourceBucket.Arn}/media/*',
      'Deny ${SourceBucket.Arn}/media/failed/*.json',
    ]);
    expect(JSON.stringify(statements)).not.toContain('uploads/');
    expect(single.resources.DeliveryDistribution.DistributionConfig.Origins[0].DomainName).toBe(
      '${SourceBucket.RegionalDomainName}',
    );
    // The URL is the bucket's root: the functions append the whole key, media/ included.
    expect(single.resources.Function.Environment.Variables.MEDIAFLOW_PUBLIC_BASE_URL).toBe(
      'https://${DeliveryDistribution.DomainName}',
    );
  });
});

describe('CDK stack, Delivery=none', () => {
  const t = synthCdk({ Delivery: 'none', FfmpegLayerArn: LAYER });
  const model = canonicalModel(t.toJSON());

  it('has no distribution, nothing for CloudFront in any policy, and no MEDIAFLOW_PUBLIC_BASE_URL', () => {
    for (const type of [
      'AWS::CloudFront::Distribution',
      'AWS::CloudFront::OriginAccessControl',
      'AWS::CloudFront::CachePolicy',
    ]) {
      t.resourceCountIs(type, 0);
    }
    expect(JSON.stringify(t.toJSON())).not.toMatch(/cloudfront\.amazonaws\.com|AWS\/CloudFront/);
    for (const fn of ['Function', 'TranscodeFunction']) {
      expect(Object.keys(model.resources[fn].Environment.Variables), fn).not.toContain('MEDIAFLOW_PUBLIC_BASE_URL');
    }
    expect(Object.keys(model.outputs).filter((o) => o.startsWith('Delivery'))).toEqual([]);
    // The access-log bucket then needs no ACLs.
    expect(model.resources.AccessLogBucket.OwnershipControls).toEqual({
      Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
    });
  });
});

describe('CDK stack, access logs', () => {
  it('on by default: the buckets log to the access-log bucket, which expires them and logs nothing itself', () => {
    const model = canonicalModel(synthCdk({ BackfillAtScale: 'true', AccessLogRetentionDays: '30' }).toJSON());
    expect(model.resources.SourceBucket.LoggingConfiguration).toEqual({
      DestinationBucketName: '${AccessLogBucket}',
      LogFilePrefix: 's3/source/',
    });
    expect(model.resources.OutputBucket.LoggingConfiguration.LogFilePrefix).toBe('s3/output/');
    expect(model.resources.BackfillInventoryBucket.LoggingConfiguration.LogFilePrefix).toBe('s3/inventory/');
    expect(model.resources.AccessLogBucket.LoggingConfiguration).toBeUndefined();
    expect(model.resources.AccessLogBucket.LifecycleConfiguration.Rules).toContainEqual({
      Id: 'expire-access-logs',
      Status: 'Enabled',
      ExpirationInDays: 30,
    });
    expect(model.resources.AccessLogBucketPolicy).toContainEqual({
      Effect: 'Allow',
      Principal: { Service: 'logging.s3.amazonaws.com' },
      Action: ['s3:PutObject'],
      Resource: ['${AccessLogBucket.Arn}/s3/*'],
      Condition: {
        ArnLike: { 'aws:SourceArn': ['${SourceBucket.Arn}', '${OutputBucket.Arn}', '${BackfillInventoryBucket.Arn}'] },
        StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}' },
      },
    });
    expect(model.resources.DeliveryDistribution.DistributionConfig.Logging).toEqual({
      Bucket: '${AccessLogBucket.DomainName}',
      Prefix: 'cloudfront/',
      IncludeCookies: false,
    });
  });

  it('AccessLogs=false: no log bucket, no bucket logging, no distribution logging', () => {
    const t = synthCdk({ AccessLogs: 'false', BackfillAtScale: 'true' });
    const model = canonicalModel(t.toJSON());
    t.resourceCountIs('AWS::S3::Bucket', 3); // source, output, inventory
    expect(model.resources.AccessLogBucket).toBeUndefined();
    for (const [id, bucket] of resourcesOf(t, 'AWS::S3::Bucket')) {
      expect(bucket.Properties.LoggingConfiguration, id).toBeUndefined();
    }
    expect(JSON.stringify(t.toJSON()).includes('logging.s3.amazonaws.com')).toBe(false);
    expect(model.resources.DeliveryDistribution.DistributionConfig.Logging).toBeUndefined();
    expect(model.outputs.AccessLogBucketName).toBeUndefined();
  });
});

describe('CDK stack, X-Ray tracing', () => {
  it('is off by default: no TracingConfig, no X-Ray permission', () => {
    const t = synthCdk({ FfmpegLayerArn: LAYER, BackfillAtScale: 'true' });
    for (const [, fn] of resourcesOf(t, 'AWS::Lambda::Function')) expect(fn.Properties.TracingConfig).toBeUndefined();
    const [[, machine]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    expect(machine.Properties.TracingConfiguration).toBeUndefined();
    expect(JSON.stringify(iamStatements(t))).not.toContain('xray:');
  });

  it('Tracing=Active: both functions and the state machine, each role may send traces and nothing more', () => {
    const t = synthCdk({ FfmpegLayerArn: LAYER, BackfillAtScale: 'true', Tracing: 'Active' });
    const functions = resourcesOf(t, 'AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    for (const [, fn] of functions) expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
    const [[, machine]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    const model = canonicalModel(t.toJSON());
    for (const worker of ['', 'Transcode', 'Backfill']) {
      const xray = model.resources[`${worker}RoleStatements`].filter((s: Json) =>
        s.Action.some((a: string) => a.startsWith('xray:')),
      );
      expect(xray, worker).toHaveLength(1);
      expect(xray[0].Resource, worker).toEqual(['*']);
    }
    // "*" only for the actions that take no resource ARN (X-Ray, log delivery).
    const wildcards = iamStatements(t).filter((s) => [s.Resource].flat().includes('*'));
    for (const s of wildcards) for (const a of [s.Action].flat()) expect(a).toMatch(/^(xray|logs):[A-Za-z]+$/);
  });
});

describe('CDK stack, dashboard', () => {
  const titles = (t: Template): string[] =>
    canonicalModel(t.toJSON()).resources.Dashboard.DashboardBody.widgets.map((w: Json) => w.properties.title);

  it('one row of EMF metrics and one of Lambda and SQS per function, and CloudFront with delivery', () => {
    expect(titles(synthCdk({ FfmpegLayerArn: LAYER }))).toEqual([
      'on-upload: time per object (ms, average)',
      'on-upload: objects',
      'on-upload: bytes in and out',
      'on-upload: cold starts (ms)',
      'on-upload: errors and throttles',
      'on-upload: duration (ms)',
      'on-upload: concurrent executions',
      'on-upload: queue',
      'transcode: time per object (ms, average)',
      'transcode: objects',
      'transcode: bytes in and out',
      'transcode: cold starts (ms)',
      'transcode: errors and throttles',
      'transcode: duration (ms)',
      'transcode: concurrent executions',
      'transcode: queue',
      'delivery: requests',
      'delivery: error rate (%)',
      'delivery: bytes downloaded',
    ]);
    expect(titles(synthCdk({ Delivery: 'none' })).filter((w) => !w.startsWith('on-upload'))).toEqual([]);
  });

  it("reads the functions' EMF metrics by the function's name, and CloudFront's in us-east-1 with Region=Global", () => {
    const model = canonicalModel(synthCdk().toJSON());
    const widgets = model.resources.Dashboard.DashboardBody.widgets;
    const metrics = widgets.flatMap((w: Json) => w.properties.metrics);
    expect(metrics).toContainEqual(['mediaflow', 'TotalMs', 'Function', '${Function}', { label: 'total' }]);
    expect(metrics).toContainEqual([
      'AWS/CloudFront',
      'Requests',
      'DistributionId',
      '${DeliveryDistribution}',
      'Region',
      'Global',
      { label: 'requests', region: 'us-east-1', stat: 'Sum' },
    ]);
    for (const w of widgets) {
      expect(w.properties.region, w.properties.title).toBe(
        w.properties.title.startsWith('delivery') ? 'us-east-1' : '${AWS::Region}',
      );
    }
  });
});
