import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { checkovSkips } from './suppressions';

/**
 * Where each bucket's S3 server access logs go in the access-log bucket
 * (LoggingConfiguration LogFilePrefix), and the distribution's standard logs.
 */
export const ACCESS_LOG_PREFIXES = {
  source: 's3/source/',
  output: 's3/output/',
  inventory: 's3/inventory/',
  cloudFront: 'cloudfront/',
} as const;

export interface AccessLogsProps {
  /** Days an access log is kept (AccessLogRetentionDays). */
  readonly retentionDays: number;
  /**
   * The distribution writes its standard logs here: CloudFront's standard
   * logging (legacy, the one that works from a stack in any region) writes
   * through a bucket ACL, so ACLs stay enabled (BucketOwnerPreferred).
   * Without it ACLs are disabled (BucketOwnerEnforced).
   */
  readonly cloudFront: boolean;
}

/**
 * The access-log bucket (AccessLogs=true, SAM's HasAccessLogs): private,
 * SSE-S3 (S3 server access logging cannot write to SSE-KMS buckets),
 * TLS only, logs expire after AccessLogRetentionDays. S3 server access logs
 * arrive through the bucket policy (logging.s3.amazonaws.com, only from the
 * stack's buckets, see allowServerAccessLogs); CloudFront's standard logs
 * through the ACL grant CloudFront adds when the distribution is created.
 */
export class AccessLogs extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: AccessLogsProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: props.cloudFront
        ? s3.ObjectOwnership.BUCKET_OWNER_PREFERRED
        : s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        { id: 'expire-access-logs', expiration: Duration.days(props.retentionDays) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    (this.bucket.node.defaultChild as s3.CfnBucket).cfnOptions.metadata = checkovSkips({
      CKV_AWS_18: 'This is the access-log bucket: logging its own access would log every log delivery, endlessly.',
      CKV_AWS_21:
        'Logs are written once and expire after AccessLogRetentionDays; versions would keep what the lifecycle ' +
        'rule removes.',
    });
  }

  /**
   * Sends a bucket's S3 server access logs here, under `prefix` (the L1
   * property: the L2's serverAccessLogsBucket writes one policy statement per
   * bucket, the SAM template one for all).
   */
  logBucket(bucket: s3.Bucket, prefix: string): void {
    (bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = {
      destinationBucketName: this.bucket.bucketName,
      logFilePrefix: prefix,
    };
  }

  /** S3 server access logging may write under s3/, for these buckets of this account only. */
  allowServerAccessLogs(buckets: s3.IBucket[]): void {
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowS3ServerAccessLogs',
        principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects('s3/*')],
        conditions: {
          ArnLike: { 'aws:SourceArn': buckets.map((b) => b.bucketArn) },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    );
  }
}
