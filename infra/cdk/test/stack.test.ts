/**
 * Security and wiring properties of the CDK stack, asserted on the
 * synthesized template (Template.fromStack; Rust bundling is skipped).
 */
import * as path from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { readVariantsConfigFile } from '../lib/app';
import { DEFAULTS } from '../lib/parameters';
import { canonicalModel, type Json, REPO_ROOT, stableStringify, synthCdk } from './cfn';

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
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Alarm',
        'AWS::IAM::Policy',
        'AWS::IAM::Role',
        'AWS::Lambda::EventSourceMapping',
        'AWS::Lambda::Function',
        'AWS::Logs::LogGroup',
        'AWS::S3::Bucket',
        'AWS::S3::Bucket',
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

  it('encrypts every bucket, blocks public access and disables ACLs', () => {
    const buckets = resourcesOf(t, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(2);
    for (const [, bucket] of buckets) {
      expect(bucket.Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
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
    expect(model.resources.OutputBucketPolicy).toEqual([
      { ...tlsDeny(['${OutputBucket.Arn}', '${OutputBucket.Arn}/*']), Action: ['s3:*'] },
    ]);
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

  it('reads only uploads, writes only outputs, reads back only its manifests', () => {
    const s3 = model.resources.RoleStatements.filter((s: Json) => s.Action.some((a: string) => a.startsWith('s3:')));
    expect(s3).toEqual(
      [
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${OutputBucket.Arn}/*'] },
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${OutputBucket.Arn}/manifest/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${OutputBucket.Arn}', '${SourceBucket.Arn}'] },
      ].sort((a, b) => stableStringify(a).localeCompare(stableStringify(b))),
    );
    const other = model.resources.RoleStatements.filter((s: Json) => !s.Action.some((a: string) => a.startsWith('s3:')));
    expect(other).toEqual(
      [
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
      ].sort((a, b) => stableStringify(a).localeCompare(stableStringify(b))),
    );
  });

  it('sends ObjectCreated notifications from the source bucket to the queue, and only those', () => {
    expect(model.resources.SourceBucket.NotificationConfiguration).toEqual({
      QueueConfigurations: [{ Event: 's3:ObjectCreated:*', Queue: '${Queue.Arn}' }],
    });
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
      SystemLogLevel: 'WARN',
      LogGroup: '${LogGroup}',
    });
    expect(model.resources.LogGroup.RetentionInDays).toBe(30);
  });

  it('sets the queue visibility timeout to 6x the function timeout', () => {
    expect(model.resources.Queue.VisibilityTimeout).toBe(6 * model.resources.Function.Timeout);
  });

  it('passes the output bucket and prefix to the function', () => {
    expect(model.resources.Function.Environment.Variables).toEqual({
      MEDIAFLOW_OUTPUT_BUCKET: '${OutputBucket}',
      MEDIAFLOW_OUTPUT_PREFIX: '',
      MEDIAFLOW_CONFIG: '',
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
    });
  });
});

describe('CDK stack, single bucket with prefixes, suffix and alarm email', () => {
  const t = synthCdk({
    BucketMode: 'single',
    SourcePrefix: 'uploads/',
    SourceSuffix: '.jpg',
    OutputPrefix: 'media/',
    AlarmEmail: 'ops@example.com',
  });
  const model = canonicalModel(t.toJSON());

  it('has one bucket that is source and output', () => {
    t.resourceCountIs('AWS::S3::Bucket', 1);
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_OUTPUT_BUCKET).toBe('${SourceBucket}');
    expect(model.resources.Function.Environment.Variables.MEDIAFLOW_OUTPUT_PREFIX).toBe('media/');
    expect(model.outputs.OutputBucketName).toBe('${SourceBucket}');
  });

  it('filters notifications by prefix and suffix, so outputs never trigger the function', () => {
    expect(model.resources.SourceBucket.NotificationConfiguration.QueueConfigurations).toEqual([
      {
        Event: 's3:ObjectCreated:*',
        Queue: '${Queue.Arn}',
        Filter: {
          S3Key: {
            Rules: [
              { Name: 'prefix', Value: 'uploads/' },
              { Name: 'suffix', Value: '.jpg' },
            ],
          },
        },
      },
    ]);
  });

  it('scopes S3 permissions to the prefixes', () => {
    const s3 = model.resources.RoleStatements.filter((s: Json) => s.Action.some((a: string) => a.startsWith('s3:')));
    expect(s3).toContainEqual({ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['${SourceBucket.Arn}/uploads/*'] });
    expect(s3).toContainEqual({ Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['${SourceBucket.Arn}/media/*'] });
    expect(s3).toContainEqual({
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: ['${SourceBucket.Arn}/media/manifest/*'],
    });
    expect(s3).toContainEqual({ Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['${SourceBucket.Arn}'] });
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
