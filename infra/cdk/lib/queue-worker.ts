import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import { ignoreLintChecks, skipChecks } from './suppressions';
import type { ArchitectureName, LogLevelName } from './parameters';

/** SQS visibility timeout = this x the function timeout (AWS's recommendation for Lambda). */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

export interface QueueWorkerProps {
  /** What the function does, for its description and the alarms. */
  readonly description: string;
  /** The function crate's Cargo.toml (in a workspace, the member's manifest). */
  readonly manifestPath: string;
  /** The binary to build with `cargo lambda build --bin`. */
  readonly binaryName: string;
  readonly architecture: ArchitectureName;
  readonly memorySize: number;
  /** Seconds. */
  readonly timeout: number;
  /** /tmp in MB; undefined for Lambda's default (512). */
  readonly ephemeralStorage?: number;
  /** Lambda layers, extracted to /opt (the transcode function's ffmpeg). */
  readonly layers?: lambda.ILayerVersion[];
  readonly reservedConcurrency?: number;
  readonly environment: Record<string, string>;
  readonly logLevel: LogLevelName;
  readonly logRetentionDays: number;
  readonly batchSize: number;
  readonly maximumConcurrency: number;
  readonly maxReceiveCount: number;
  readonly queueAgeAlarmSeconds: number;
  /** Where the alarms notify, if anywhere. */
  readonly alarmTopic?: sns.ITopic;
  /** X-Ray: TracingConfig Mode Active, and the role may send traces (Tracing=Active). */
  readonly tracing: boolean;
}

/**
 * The checkov suppressions of each worker's resources, with their reasons
 * (the SAM template's Metadata says the same).
 */
export const WORKER_CHECKOV_SKIPS = {
  function: {
    CKV_AWS_115:
      "Concurrency is bounded by the SQS event source mapping's MaximumConcurrency; reserved concurrency would " +
      'take capacity from the rest of the account (on-upload has the optional ReservedConcurrency parameter).',
    CKV_AWS_116:
      'Invoked synchronously by the SQS event source mapping, never asynchronously: a Lambda DLQ would never ' +
      "receive anything. Failed messages go to the queue's dead-letter queue (RedrivePolicy) after MaxReceiveCount.",
    CKV_AWS_117:
      'Talks only to S3 and SQS (and the transcode queue) over TLS with IAM auth; no private resource to reach. A ' +
      'VPC would need NAT or gateway/interface endpoints for no gain.',
    CKV_AWS_173:
      'The variables hold bucket names, prefixes, the queue and distribution URLs and the variants config, no ' +
      'secrets; Lambda encrypts them at rest with its own key. A customer managed key would add cost and a key policy.',
  },
  queue: {
    CKV_AWS_27:
      'Encrypted at rest with SSE-SQS (SqsManagedSseEnabled). checkov only accepts KMS; S3 event notifications ' +
      'cannot use the aws/sqs managed key, so KMS would mean a customer managed key and its policy for S3.',
  },
  logGroup: {
    CKV_AWS_158:
      "CloudWatch Logs' default encryption at rest; the logs hold keys, timings and errors, no content. A " +
      'customer managed key would add cost and a key policy for the logs service.',
  },
} as const;

/**
 * The cfn-lint serverless rules (cfn-lint-serverless) each worker's resources
 * ignore, with their reasons (the SAM template's Metadata and comments say the same).
 */
export const WORKER_LINT_IGNORES = {
  deadLetterQueue: {
    ES6000:
      'A dead-letter queue ends the redrive chain: its messages stay 14 days to be read and redriven ' +
      '(infra/README.md).',
  },
  function: {
    WS1000: 'X-Ray is opt-in (Tracing=Active): it bills per trace, and the EMF metrics and JSON logs cover the rest.',
    WS1004:
      'The log group is explicit (LoggingConfig LogGroup, RetentionInDays = LogRetentionDays); the rule looks ' +
      'for /aws/lambda/<name>, which the function never writes to.',
  },
  // CDK only: SAM writes the mapping from the function's SQS event.
  eventSourceMapping: {
    ES1001:
      "An SQS event source mapping takes no OnFailure destination; failed messages go to the queue's " +
      'dead-letter queue (RedrivePolicy).',
  },
} as const;

/**
 * One queue-driven worker: a queue with a dead-letter queue, a least-privilege
 * role (logs and this queue only; the caller grants the data access), a Rust
 * Lambda function fed by the queue with batch item failures, and its alarms.
 *
 * The stack makes one for `on-upload` (fed by the source bucket's
 * notifications) and, with an ffmpeg layer, one for `transcode` (fed by
 * on-upload, which forwards the videos), each with its own binary and queue.
 */
export class QueueWorker extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly function: lambda.Function;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: QueueWorkerProps) {
    super(scope, id);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      // 14 days, the maximum: time to find and fix the cause before redriving.
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * props.timeout),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `mediaflow ${props.binaryName} function (least privilege)`,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new RustFunction(this, 'Function', {
      description: props.description,
      manifestPath: props.manifestPath,
      binaryName: props.binaryName,
      // RustFunction defaults to provided.al2023; spelled out because the SAM
      // template says the same and the tests compare them.
      runtime: 'provided.al2023',
      architecture: props.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      memorySize: props.memorySize,
      timeout: Duration.seconds(props.timeout),
      ephemeralStorageSize: props.ephemeralStorage === undefined ? undefined : Size.mebibytes(props.ephemeralStorage),
      layers: props.layers,
      role: this.role,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: props.environment,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: props.logLevel as lambda.ApplicationLogLevel,
      // INFO: Lambda's platform lines, among them each invocation's REPORT
      // (duration, billed duration, max memory used), are kept.
      systemLogLevelV2: lambda.SystemLogLevel.INFO,
      logGroup: this.logGroup,
      // Undefined (Disabled): no TracingConfig and no X-Ray permission.
      tracing: props.tracing ? lambda.Tracing.ACTIVE : undefined,
    });
    skipChecks(this.function.node.defaultChild as lambda.CfnFunction, WORKER_CHECKOV_SKIPS.function);
    for (const queue of [this.queue, this.deadLetterQueue]) {
      skipChecks(queue.node.defaultChild as sqs.CfnQueue, WORKER_CHECKOV_SKIPS.queue);
    }
    ignoreLintChecks(this.deadLetterQueue.node.defaultChild as sqs.CfnQueue, WORKER_LINT_IGNORES.deadLetterQueue);
    ignoreLintChecks(this.function.node.defaultChild as lambda.CfnFunction, WORKER_LINT_IGNORES.function);
    skipChecks(this.logGroup.node.defaultChild as logs.CfnLogGroup, WORKER_CHECKOV_SKIPS.logGroup);

    // Grants ReceiveMessage, DeleteMessage, ChangeMessageVisibility,
    // GetQueueAttributes (and GetQueueUrl) on this queue only.
    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: props.batchSize,
        maxConcurrency: props.maximumConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    for (const mapping of this.function.node.findAll()) {
      if (mapping instanceof lambda.CfnEventSourceMapping) {
        ignoreLintChecks(mapping, WORKER_LINT_IGNORES.eventSourceMapping);
      }
    }

    // lambda.Function adds "DependsOn: <role>" next to its "Role: GetAtt <role>",
    // which cfn-lint reports as redundant (W3005). Keep only the dependency that
    // matters: the role's policy (logs, queue, buckets) must exist before the
    // function and its event source mapping are created.
    const policy = this.role.node.tryFindChild('DefaultPolicy') as iam.Policy;
    (this.function.node.defaultChild as lambda.CfnFunction).addOverride('DependsOn', [
      (policy.node.defaultChild as iam.CfnPolicy).logicalId,
    ]);

    const what = `mediaflow ${props.binaryName}`;
    this.alarms = [
      new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
        alarmDescription:
          `${what}: messages failed ${props.maxReceiveCount} times and are in the dead-letter ` +
          'queue. Read them with `aws sqs receive-message`, fix the cause, then redrive them (infra/README.md).',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: cloudwatch.Stats.MAXIMUM,
          period: Duration.minutes(1),
        }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'ErrorsAlarm', {
        alarmDescription:
          `${what}: the function failed whole invocations (crash, timeout, out of memory). ` +
          'Per-message failures that can succeed later are reported as batch item failures and end in the DLQ; ' +
          'permanent ones are recorded under failed/ and not retried.',
        metric: this.function.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'QueueAgeAlarm', {
        alarmDescription:
          `${what}: messages are waiting longer than ${props.queueAgeAlarmSeconds} s (the function is ` +
          'failing, throttled, or MaximumConcurrency is too low for the load).',
        metric: this.queue.metricApproximateAgeOfOldestMessage({
          statistic: cloudwatch.Stats.MAXIMUM,
          period: Duration.minutes(1),
        }),
        threshold: props.queueAgeAlarmSeconds,
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    if (props.alarmTopic) {
      const action = new cw_actions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
