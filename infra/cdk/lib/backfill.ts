import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ACCESS_LOG_PREFIXES, type AccessLogs } from './access-logs';
import { checkovSkips, ignoreLintChecks } from './suppressions';

/**
 * The S3 Inventory configuration's id: reports land at
 * <source bucket>/mediaflow-backfill/<YYYY-MM-DDTHH-MMZ>/manifest.json in the
 * inventory bucket.
 */
export const INVENTORY_ID = 'mediaflow-backfill';

/** The configuration id the backfill's S3 events carry (crates/pipeline S3Notification::backfill). */
export const BACKFILL_CONFIGURATION_ID = 'mediaflow-backfill';

/**
 * Each SendMessageBatch entry's body: the S3 event on-upload reads
 * (mediaflow_pipeline::parse_body), built by States.Format from an inventory
 * row's Bucket, Key (URL-encoded in the report, as S3 events' keys are) and
 * ETag. In an intrinsic function's string literal the characters ' { } \ are
 * escaped with a backslash; an unescaped {} takes the next argument.
 */
export const MESSAGE_BODY_FORMAT =
  String.raw`States.Format('\{"Records":[\{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",` +
  String.raw`"s3":\{"s3SchemaVersion":"1.0","configurationId":"${BACKFILL_CONFIGURATION_ID}","bucket":\{"name":"{}"\},` +
  String.raw`"object":\{"key":"{}","eTag":"{}"\}\}\}]\}', $$.Map.Item.Value.Bucket, $$.Map.Item.Value.Key, $$.Map.Item.Value.ETag)`;

/**
 * The state machine (JSONPath ASL), with the placeholders ${QueueUrl},
 * ${MaxConcurrency} and ${ToleratedFailurePercentage} filled by
 * DefinitionSubstitutions: the same document as the SAM template's
 * BackfillStateMachine Definition.
 */
export function backfillDefinition(): Record<string, unknown> {
  return {
    Comment:
      'mediaflow backfill at scale: every object of an S3 Inventory report (execution input ' +
      '{"Bucket": inventory bucket, "Key": ".../manifest.json"}) to the on-upload queue as an ' +
      'S3 event (docs/backfill.md).',
    StartAt: 'Settings',
    States: {
      // Substitutions are strings: StringToJson makes numbers of them again.
      Settings: {
        Type: 'Pass',
        Parameters: {
          'Bucket.$': '$.Bucket',
          'Key.$': '$.Key',
          'MaxConcurrency.$': "States.StringToJson('${MaxConcurrency}')",
          'ToleratedFailurePercentage.$': "States.StringToJson('${ToleratedFailurePercentage}')",
        },
        Next: 'Backfill',
      },
      Backfill: {
        Type: 'Map',
        Label: 'Backfill',
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'MANIFEST' },
          Parameters: { 'Bucket.$': '$.Bucket', 'Key.$': '$.Key' },
        },
        // One SendMessageBatch entry per inventory row.
        ItemSelector: {
          'Id.$': "States.Format('{}', $$.Map.Item.Index)",
          'MessageBody.$': MESSAGE_BODY_FORMAT,
        },
        ItemBatcher: { MaxItemsPerBatch: 10 },
        MaxConcurrencyPath: '$.MaxConcurrency',
        ToleratedFailurePercentagePath: '$.ToleratedFailurePercentage',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' },
          StartAt: 'Send',
          States: {
            Send: {
              Type: 'Task',
              Resource: 'arn:aws:states:::aws-sdk:sqs:sendMessageBatch',
              Parameters: { QueueUrl: '${QueueUrl}', 'Entries.$': '$.Items' },
              // Throttling or a dropped connection: send the batch again (a
              // message sent twice is skipped by on-upload).
              Retry: [
                {
                  ErrorEquals: ['States.ALL'],
                  IntervalSeconds: 1,
                  MaxAttempts: 6,
                  BackoffRate: 2,
                  JitterStrategy: 'FULL',
                },
              ],
              Next: 'AllSent',
            },
            // SendMessageBatch answers 200 even when some entries failed.
            AllSent: {
              Type: 'Choice',
              Choices: [{ Variable: '$.Failed[0]', IsPresent: true, Next: 'NotAllSent' }],
              Default: 'Sent',
            },
            NotAllSent: {
              Type: 'Fail',
              Error: 'Backfill.NotAllSent',
              Cause: 'SQS refused some messages of the batch (SendMessageBatch Failed entries)',
            },
            Sent: { Type: 'Succeed' },
          },
        },
        End: true,
      },
    },
  };
}

export interface BackfillProps {
  /** The source (uploads) bucket: its inventory is the backfill's listing. */
  readonly sourceBucket: s3.Bucket;
  /** SourcePrefix: the inventory covers only this prefix ("" for the whole bucket). */
  readonly sourcePrefix: string;
  /** on-upload's queue, where the events go. */
  readonly queue: sqs.IQueue;
  readonly maxConcurrency: number;
  readonly toleratedFailurePercentage: number;
  readonly inventoryRetentionDays: number;
  readonly logRetentionDays: number;
  /** The access-log bucket, if any: the inventory bucket's S3 server access logs go there. */
  readonly accessLogs?: AccessLogs;
  /** X-Ray tracing of the state machine (Tracing=Active). */
  readonly tracing: boolean;
}

/**
 * Backfill at scale (docs/backfill.md, "At hundreds of millions of objects"):
 * a daily S3 Inventory of the source bucket into a private inventory bucket,
 * and a STANDARD state machine whose Distributed Map reads a report's
 * manifest.json and sends each object to on-upload's queue as an S3 event.
 * The same resources as the SAM template's Backfill* (condition HasBackfill).
 */
export class Backfill extends Construct {
  readonly inventoryBucket: s3.Bucket;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly stateMachine: sfn.CfnStateMachine;

  constructor(scope: Construct, id: string, props: BackfillProps) {
    super(scope, id);

    this.inventoryBucket = new s3.Bucket(this, 'InventoryBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        { id: 'expire-inventory-reports', expiration: Duration.days(props.inventoryRetentionDays) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    (this.inventoryBucket.node.defaultChild as s3.CfnBucket).cfnOptions.metadata = checkovSkips({
      CKV_AWS_21:
        'Reports are regenerated daily and expire after BackfillInventoryRetentionDays; versions would keep ' +
        'what the lifecycle rule removes.',
    });
    props.accessLogs?.logBucket(this.inventoryBucket, ACCESS_LOG_PREFIXES.inventory);
    // S3 Inventory writes the reports of this stack's source bucket only.
    this.inventoryBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowInventoryReports',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [this.inventoryBucket.arnForObjects('*')],
        conditions: {
          ArnLike: { 'aws:SourceArn': props.sourceBucket.bucketArn },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    );

    // The L1 property rather than the bucket's `inventories`, whose policy
    // statement has no aws:SourceAccount condition.
    (props.sourceBucket.node.defaultChild as s3.CfnBucket).inventoryConfigurations = [
      {
        id: INVENTORY_ID,
        enabled: true,
        scheduleFrequency: 'Daily',
        includedObjectVersions: 'Current',
        optionalFields: ['Size', 'ETag'],
        prefix: props.sourcePrefix === '' ? undefined : props.sourcePrefix,
        destination: { bucketArn: this.inventoryBucket.bucketArn, format: 'CSV' },
      },
    ];

    const name = `${Aws.STACK_NAME}-backfill`;
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      // Step Functions' vended logs: keeps CloudWatch Logs' resource policy short.
      logGroupName: `/aws/vendedlogs/states/${name}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    (this.logGroup.node.defaultChild as logs.CfnLogGroup).cfnOptions.metadata = checkovSkips({
      CKV_AWS_158:
        "CloudWatch Logs' default encryption, as the functions' log groups; it holds errors without execution " +
        'data (IncludeExecutionData false).',
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'mediaflow backfill state machine (least privilege)',
    });
    const statements: [string, string[], string[]][] = [
      // The ItemReader: manifest.json and the CSV files it lists.
      ['ReadInventoryReports', ['s3:GetObject'], [this.inventoryBucket.arnForObjects('*')]],
      // SendMessageBatch is authorized as sqs:SendMessage.
      ['SendToUploadsQueue', ['sqs:SendMessage'], [props.queue.queueArn]],
      // The Distributed Map's child workflows are executions of this state
      // machine (named, so no circular reference).
      [
        'StartChildWorkflows',
        ['states:StartExecution'],
        [`arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:stateMachine:${name}`],
      ],
      [
        'ManageChildWorkflows',
        ['states:DescribeExecution', 'states:StopExecution'],
        [
          `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${name}:*`,
          `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${name}/*`,
        ],
      ],
      // Logging: these actions take no resource ARN, so "*" is the only value.
      [
        'DeliverLogs',
        [
          'logs:CreateLogDelivery',
          'logs:GetLogDelivery',
          'logs:UpdateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:DescribeResourcePolicies',
          'logs:DescribeLogGroups',
        ],
        ['*'],
      ],
    ];
    if (props.tracing) {
      // What Step Functions needs to send traces; X-Ray takes no resource ARN.
      statements.push([
        'Tracing',
        ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
        ['*'],
      ]);
    }
    for (const [sid, actions, resources] of statements) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources }));
    }

    this.stateMachine = new sfn.CfnStateMachine(this, 'StateMachine', {
      stateMachineName: name,
      stateMachineType: 'STANDARD',
      roleArn: this.role.roleArn,
      loggingConfiguration: {
        level: 'ERROR',
        includeExecutionData: false,
        destinations: [{ cloudWatchLogsLogGroup: { logGroupArn: this.logGroup.logGroupArn } }],
      },
      definitionSubstitutions: {
        QueueUrl: props.queue.queueUrl,
        MaxConcurrency: String(props.maxConcurrency),
        ToleratedFailurePercentage: String(props.toleratedFailurePercentage),
      },
      definition: backfillDefinition(),
      tracingConfiguration: props.tracing ? { enabled: true } : undefined,
    });
    ignoreLintChecks(this.stateMachine, {
      WS5000: 'X-Ray is opt-in (Tracing=Active): it bills per trace; the state machine logs its errors.',
    });
    // Step Functions checks the role's log delivery permissions when it
    // creates the state machine: the role's policy must exist first.
    const policy = this.role.node.tryFindChild('DefaultPolicy') as iam.Policy;
    this.stateMachine.addResourceDependency(policy.node.defaultChild as iam.CfnPolicy);
  }
}
