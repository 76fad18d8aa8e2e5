import type { CfnResource } from 'aws-cdk-lib';

/**
 * Scanner suppressions in a resource's Metadata, as the SAM template writes
 * them: checkov's `checkov: skip: [{id, comment}]`, and cfn-lint's
 * `cfn-lint: config: ignore_checks: [...]` for the serverless rules
 * (cfn-lint-serverless: ES*, WS*; core cfn-lint needs none). Every one is a
 * deliberate choice with its reason; infra/README.md lists them.
 */
export function checkovSkips(reasons: Record<string, string>): Record<string, unknown> {
  return { checkov: { skip: Object.entries(reasons).map(([id, comment]) => ({ id, comment })) } };
}

/** Adds checkov suppressions to a resource's Metadata (keeping what is there). */
export function skipChecks(resource: CfnResource, reasons: Record<string, string>): void {
  const metadata = resource.cfnOptions.metadata ?? {};
  const skip = (metadata.checkov?.skip ?? []) as { id: string; comment: string }[];
  resource.cfnOptions.metadata = {
    ...metadata,
    checkov: { skip: [...skip, ...Object.entries(reasons).map(([id, comment]) => ({ id, comment }))] },
  };
}

/**
 * Adds cfn-lint rules to ignore for a resource (Metadata cfn-lint config
 * ignore_checks). cfn-lint's metadata has no place for a reason: the reasons
 * are the values here and comments in the SAM template.
 */
export function ignoreLintChecks(resource: CfnResource, reasons: Record<string, string>): void {
  const metadata = resource.cfnOptions.metadata ?? {};
  const ignore = (metadata['cfn-lint']?.config?.ignore_checks ?? []) as string[];
  resource.cfnOptions.metadata = {
    ...metadata,
    'cfn-lint': { config: { ignore_checks: [...ignore, ...Object.keys(reasons)] } },
  };
}
