import { Aws, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import type { QueueWorker } from './queue-worker';

/** The functions' EMF namespace (crates/pipeline/src/metrics.rs NAMESPACE). */
export const METRICS_NAMESPACE = 'mediaflow';

/**
 * The EMF metrics' one dimension: the Lambda function's name
 * (AWS_LAMBDA_FUNCTION_NAME, see functions/common/src/settings.rs).
 */
export const METRICS_DIMENSION = 'Function';

/** Per-object stage times (ms), per EMF line. */
export const STAGE_METRICS = ['FetchMs', 'DecodeMs', 'ResizeMs', 'EncodeMs', 'WriteMs', 'TotalMs'] as const;

/** Where CloudFront's metrics are (Region=Global, in us-east-1 only). */
export const CLOUDFRONT_METRICS_REGION = 'us-east-1';

/** The widgets' size: four to a row of 24. */
const WIDTH = 6;
const HEIGHT = 6;
const PERIOD = Duration.minutes(5);

export interface DashboardWorker {
  /** "on-upload" or "transcode": the widgets' titles. */
  readonly name: string;
  readonly worker: QueueWorker;
}

export interface DashboardProps {
  /** on-upload, then transcode if deployed. */
  readonly workers: DashboardWorker[];
  /** The distribution's id, with Delivery=cloudfront. */
  readonly distributionId?: string;
}

/**
 * One CloudWatch dashboard, `<stack>-<region>`: for each function a row of
 * its EMF metrics (namespace mediaflow, dimension Function = the function's
 * name: stage times, objects processed/skipped/failed, bytes and variants,
 * cold starts) and a row of Lambda's and SQS's (errors and throttles,
 * duration, concurrency, queue and dead-letter queue depth with the oldest
 * message's age); with Delivery=cloudfront a row of the distribution's
 * requests, error rates and bytes (us-east-1, Region=Global). The SAM
 * template's Dashboard writes the same body.
 */
export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Aws.STACK_NAME}-${Aws.REGION}`,
    });
    for (const { name, worker } of props.workers) {
      const fn = worker.function;
      const emf = (metricName: string, statistic: string, label: string) =>
        new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName,
          dimensionsMap: { [METRICS_DIMENSION]: fn.functionName },
          statistic,
          label,
          period: PERIOD,
        });
      const graph = (title: string, left: cloudwatch.IMetric[], right?: cloudwatch.IMetric[]) =>
        new cloudwatch.GraphWidget({ title: `${name}: ${title}`, left, right, width: WIDTH, height: HEIGHT });
      this.dashboard.addWidgets(
        graph(
          'time per object (ms, average)',
          STAGE_METRICS.map((m) => emf(m, 'Average', m.replace(/Ms$/, '').toLowerCase())),
        ),
        graph('objects', [
          emf('Processed', 'Sum', 'processed'),
          emf('Skipped', 'Sum', 'skipped'),
          emf('Failed', 'Sum', 'failed'),
        ]),
        graph(
          'bytes in and out',
          [emf('BytesIn', 'Sum', 'bytes in'), emf('BytesOut', 'Sum', 'bytes out')],
          [emf('Variants', 'Sum', 'variants')],
        ),
        graph('cold starts (ms)', [
          emf('ColdStartMs', 'Average', 'average'),
          emf('ColdStartMs', 'Maximum', 'maximum'),
          emf('ColdStartMs', 'SampleCount', 'cold starts'),
        ]),
      );
      this.dashboard.addWidgets(
        graph('errors and throttles', [
          fn.metricErrors({ statistic: 'Sum', label: 'errors', period: PERIOD }),
          fn.metricThrottles({ statistic: 'Sum', label: 'throttles', period: PERIOD }),
        ]),
        graph('duration (ms)', [
          fn.metricDuration({ statistic: 'p50', label: 'p50', period: PERIOD }),
          fn.metricDuration({ statistic: 'p99', label: 'p99', period: PERIOD }),
          fn.metricDuration({ statistic: 'Maximum', label: 'maximum', period: PERIOD }),
        ]),
        graph('concurrent executions', [
          fn.metric('ConcurrentExecutions', { statistic: 'Maximum', label: 'concurrent', period: PERIOD }),
        ]),
        graph(
          'queue',
          [
            worker.queue.metricApproximateNumberOfMessagesVisible({
              statistic: 'Maximum',
              label: 'visible',
              period: PERIOD,
            }),
            worker.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              statistic: 'Maximum',
              label: 'dead-letter queue',
              period: PERIOD,
            }),
          ],
          [
            worker.queue.metricApproximateAgeOfOldestMessage({
              statistic: 'Maximum',
              label: 'oldest (s)',
              period: PERIOD,
            }),
          ],
        ),
      );
    }
    if (props.distributionId !== undefined) {
      const cloudFront = (metricName: string, statistic: string, label: string) =>
        new cloudwatch.Metric({
          namespace: 'AWS/CloudFront',
          metricName,
          dimensionsMap: { DistributionId: props.distributionId!, Region: 'Global' },
          statistic,
          label,
          period: PERIOD,
          region: CLOUDFRONT_METRICS_REGION,
        });
      const graph = (title: string, left: cloudwatch.IMetric[]) =>
        new cloudwatch.GraphWidget({
          title: `delivery: ${title}`,
          left,
          width: WIDTH,
          height: HEIGHT,
          region: CLOUDFRONT_METRICS_REGION,
        });
      this.dashboard.addWidgets(
        graph('requests', [cloudFront('Requests', 'Sum', 'requests')]),
        graph('error rate (%)', [
          cloudFront('4xxErrorRate', 'Average', '4xx'),
          cloudFront('5xxErrorRate', 'Average', '5xx'),
          cloudFront('TotalErrorRate', 'Average', 'total'),
        ]),
        graph('bytes downloaded', [cloudFront('BytesDownloaded', 'Sum', 'bytes')]),
      );
    }
  }

  /** The console URL of the dashboard (the DashboardUrl output). */
  get url(): string {
    return (
      `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}` +
      `#dashboards/dashboard/${this.dashboard.dashboardName}`
    );
  }
}
