import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import { resolveParameters } from './parameters';
import { MediaflowStack } from './stack';

export const DEFAULT_STACK_NAME = 'mediaflow';

/**
 * Reads a TOML variants file for MEDIAFLOW_CONFIG, dropping whole-line
 * comments and blank lines so an annotated mediaflow.toml fits Lambda's 4 KB
 * environment limit. (A '#' line inside a multi-line TOML string would be
 * dropped too: mediaflow.toml has none.)
 */
export function readVariantsConfigFile(file: string): string {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .join('\n');
}

/** Builds the stack from the app's context (see bin/app.ts). */
export function buildApp(app: App): MediaflowStack {
  const context = (name: string): unknown => {
    const value = app.node.tryGetContext(name);
    return value === undefined || value === null ? undefined : value;
  };
  if (context('SourceSuffix') !== undefined) {
    // Removed before 1.0 (as in the SAM template, where CloudFormation rejects it).
    throw new Error(
      'mediaflow: SourceSuffix was removed: every key under SourcePrefix goes to on-upload, ' +
        'which routes by the content (see infra/README.md)',
    );
  }
  const configFile = context('VariantsConfigFile');
  if (configFile !== undefined && context('VariantsConfig') !== undefined) {
    throw new Error('mediaflow: give VariantsConfig or VariantsConfigFile, not both');
  }
  const parameters = resolveParameters((name) => {
    if (name === 'VariantsConfig' && configFile !== undefined) {
      return readVariantsConfigFile(path.resolve(String(configFile)));
    }
    // CDK only: a local layer zip, relative to the directory cdk runs in.
    if (name === 'FfmpegLayerZip') {
      const zip = context(name);
      return zip === undefined || String(zip) === '' ? undefined : path.resolve(String(zip));
    }
    return context(name);
  });
  const stackName = String(context('StackName') ?? DEFAULT_STACK_NAME);
  return new MediaflowStack(app, 'Mediaflow', {
    stackName,
    ...parameters,
    // Environment-agnostic unless the CLI knows the account and region.
    env:
      process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
        ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
        : undefined,
  });
}
