import { Aws } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ACCESS_LOG_PREFIXES } from './access-logs';
import { skipChecks } from './suppressions';

/**
 * The variable both functions get with Delivery=cloudfront: the
 * distribution's `https://<domain>`, no trailing slash. A manifest then
 * gives each output's URL as this, "/" and the output's whole key (with
 * OutputPrefix) percent-encoded, so the distribution serves the bucket from
 * its root (no OriginPath). Absent with Delivery=none.
 */
export const PUBLIC_BASE_URL_VARIABLE = 'MEDIAFLOW_PUBLIC_BASE_URL';

/**
 * The cache policy's TTLs. MinTTL 0: an object's own Cache-Control decides
 * (mediaflow writes `public, max-age=31536000, immutable` on content-hashed
 * keys, no-cache on manifests, a short max-age on overwritable keys), also
 * no-cache or no-store; DefaultTTL only for an object without one; MaxTTL
 * a year, the immutable outputs' max-age.
 */
export const CACHE_TTLS = { minTtl: 0, defaultTtl: 86400, maxTtl: 31536000 } as const;

/**
 * CloudFront's managed response headers policy CORS-and-SecurityHeadersPolicy:
 * `Access-Control-Allow-Origin: *` (the outputs are public by URL anyway;
 * it lets a web page fetch() a manifest or draw a variant on a canvas) and
 * the security headers (HSTS, `X-Content-Type-Options: nosniff` so a browser
 * never sniffs an output made from an upload as HTML, `X-Frame-Options`,
 * `Referrer-Policy`).
 */
export const RESPONSE_HEADERS_POLICY_ID = 'e61eb60c-9c35-4d20-a928-2b84e02af89c';

/** The distribution's one origin (the output bucket) and the behaviour's target. */
export const ORIGIN_ID = 'outputs';

export interface DeliveryProps {
  /** The output bucket (the source bucket in single-bucket mode). */
  readonly bucket: s3.Bucket;
  /** OutputPrefix: CloudFront may read only keys under it. */
  readonly outputPrefix: string;
  /** The origin access control's and cache policy's name, unique in the account. */
  readonly name: string;
  /** The access-log bucket, if any: the distribution's standard logs go there. */
  readonly logBucket?: s3.IBucket;
}

/**
 * Delivery=cloudfront (SAM's HasDelivery): a CloudFront distribution in front
 * of the output bucket, which stays private. CloudFront signs its requests
 * with an origin access control (SigV4, not a legacy origin access
 * identity); the bucket policy lets exactly this distribution read
 * (s3:GetObject) keys under OutputPrefix, and nothing else: no uploads, no
 * listing, and no failure records (`<OutputPrefix>failed/*.json`). HTTPS
 * only, HTTP/2 and HTTP/3, compressed, cached as each object's
 * Cache-Control says.
 */
export class Delivery extends Construct {
  readonly originAccessControl: cloudfront.CfnOriginAccessControl;
  readonly cachePolicy: cloudfront.CfnCachePolicy;
  readonly distribution: cloudfront.CfnDistribution;
  /** `https://<domain>`: MEDIAFLOW_PUBLIC_BASE_URL, and the DeliveryUrl output. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: DeliveryProps) {
    super(scope, id);

    this.originAccessControl = new cloudfront.CfnOriginAccessControl(this, 'OriginAccessControl', {
      originAccessControlConfig: {
        name: props.name,
        description: 'mediaflow: CloudFront signs every request to the output bucket (SigV4)',
        originAccessControlOriginType: 's3',
        signingBehavior: 'always',
        signingProtocol: 'sigv4',
      },
    });

    this.cachePolicy = new cloudfront.CfnCachePolicy(this, 'CachePolicy', {
      cachePolicyConfig: {
        name: props.name,
        comment: "mediaflow outputs: each object's Cache-Control decides (a day without one)",
        minTtl: CACHE_TTLS.minTtl,
        defaultTtl: CACHE_TTLS.defaultTtl,
        maxTtl: CACHE_TTLS.maxTtl,
        // Nothing of the request but the path (and the encoding it accepts)
        // makes a different object.
        parametersInCacheKeyAndForwardedToOrigin: {
          enableAcceptEncodingGzip: true,
          enableAcceptEncodingBrotli: true,
          cookiesConfig: { cookieBehavior: 'none' },
          headersConfig: { headerBehavior: 'none' },
          queryStringsConfig: { queryStringBehavior: 'none' },
        },
      },
    });

    this.distribution = new cloudfront.CfnDistribution(this, 'Distribution', {
      distributionConfig: {
        enabled: true,
        comment: 'mediaflow: the outputs (variants, renditions, manifests) in the output bucket',
        httpVersion: 'http2and3',
        ipv6Enabled: true,
        // The bucket's root, no OriginPath: a URL's path is the output's whole key.
        origins: [
          {
            id: ORIGIN_ID,
            domainName: props.bucket.bucketRegionalDomainName,
            originAccessControlId: this.originAccessControl.attrId,
            s3OriginConfig: { originAccessIdentity: '' },
          },
        ],
        defaultCacheBehavior: {
          targetOriginId: ORIGIN_ID,
          viewerProtocolPolicy: 'redirect-to-https',
          allowedMethods: ['GET', 'HEAD'],
          cachedMethods: ['GET', 'HEAD'],
          compress: true,
          cachePolicyId: this.cachePolicy.ref,
          responseHeadersPolicyId: RESPONSE_HEADERS_POLICY_ID,
        },
        logging: props.logBucket
          ? { bucket: props.logBucket.bucketDomainName, prefix: ACCESS_LOG_PREFIXES.cloudFront, includeCookies: false }
          : undefined,
        viewerCertificate: { cloudFrontDefaultCertificate: true },
      },
    });
    skipChecks(this.distribution, DISTRIBUTION_CHECKOV_SKIPS);

    this.url = `https://${this.distribution.attrDomainName}`;
    const distributionArn = `arn:${Aws.PARTITION}:cloudfront::${Aws.ACCOUNT_ID}:distribution/${this.distribution.ref}`;
    const cloudFront = new iam.ServicePrincipal('cloudfront.amazonaws.com');
    props.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudFrontReadOutputs',
        principals: [cloudFront],
        actions: ['s3:GetObject'],
        resources: [props.bucket.arnForObjects(`${props.outputPrefix}*`)],
        conditions: { StringEquals: { 'AWS:SourceArn': distributionArn } },
      }),
    );
    // Failure records are for operators (aws s3 cp), not for the public.
    // Outputs never end in .json (their key template ends in a media
    // extension), manifests are under manifest/.
    props.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyCloudFrontFailureRecords',
        effect: iam.Effect.DENY,
        principals: [cloudFront],
        actions: ['s3:GetObject'],
        resources: [props.bucket.arnForObjects(`${props.outputPrefix}failed/*.json`)],
      }),
    );
  }
}

/** The distribution's checkov suppressions (the SAM template's DeliveryDistribution Metadata). */
export const DISTRIBUTION_CHECKOV_SKIPS: Record<string, string> = {
  CKV_AWS_174:
    "The *.cloudfront.net default certificate: CloudFront fixes its minimum protocol version (a custom domain's " +
    'certificate would take TLSv1.2_2021). Viewers are redirected to HTTPS; the origin is reached over HTTPS.',
  CKV_AWS_68:
    'No WAF: the distribution serves public, immutable, content-addressed files with GET and HEAD only and no ' +
    'query strings, cookies or headers in the cache key; a web ACL costs per request and rule for no rule to ' +
    'apply. Attach one (WebACLId) if you need rate limiting or geo rules.',
};
