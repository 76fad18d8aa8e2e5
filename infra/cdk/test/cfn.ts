/**
 * Test helpers: load the SAM template (YAML with CloudFormation's short-form
 * tags), evaluate its parameters and conditions like CloudFormation would,
 * synthesize the CDK stack, and reduce both to one canonical model that can be
 * compared field by field.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll } from 'vitest';
import { parse, type Tags } from 'yaml';
import { buildApp } from '../lib/app';
import { REPO_ROOT } from '../lib/stack';

export { REPO_ROOT };
export const SAM_TEMPLATE_PATH = path.join(REPO_ROOT, 'infra', 'sam', 'template.yaml');
export const ENVIRONMENT_JSON_PATH = path.join(REPO_ROOT, 'functions', 'on-upload', 'environment.json');
export const TRANSCODE_ENVIRONMENT_JSON_PATH = path.join(REPO_ROOT, 'functions', 'transcode', 'environment.json');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

const FUNCTIONS: Record<string, string> = {
  '!Base64': 'Fn::Base64',
  '!Cidr': 'Fn::Cidr',
  '!FindInMap': 'Fn::FindInMap',
  '!GetAZs': 'Fn::GetAZs',
  '!ImportValue': 'Fn::ImportValue',
  '!Join': 'Fn::Join',
  '!Select': 'Fn::Select',
  '!Split': 'Fn::Split',
  '!Sub': 'Fn::Sub',
  '!Transform': 'Fn::Transform',
  '!And': 'Fn::And',
  '!Equals': 'Fn::Equals',
  '!If': 'Fn::If',
  '!Not': 'Fn::Not',
  '!Or': 'Fn::Or',
  '!Condition': 'Condition',
};

/** yaml custom tags for CloudFormation's short forms (scalar, sequence and mapping). */
export const CFN_TAGS: Tags = [
  { tag: '!Ref', resolve: (value: string) => ({ Ref: value }) },
  { tag: '!GetAtt', resolve: (value: string) => ({ 'Fn::GetAtt': value.split(/\.(.*)/s, 2) }) },
  { tag: '!GetAtt', collection: 'seq', resolve: (value: Json) => ({ 'Fn::GetAtt': value.toJSON() }) },
  ...Object.entries(FUNCTIONS).flatMap(([tag, name]) => [
    { tag, resolve: (value: string) => ({ [name]: value }) },
    { tag, collection: 'seq' as const, resolve: (value: Json) => ({ [name]: value.toJSON() }) },
    { tag, collection: 'map' as const, resolve: (value: Json) => ({ [name]: value.toJSON() }) },
  ]),
];

export function loadSamTemplate(file = SAM_TEMPLATE_PATH): Json {
  return parse(readFileSync(file, 'utf8'), { customTags: CFN_TAGS });
}

/** A function's contract: on-upload's by default. */
export function loadEnvironmentJson(file = ENVIRONMENT_JSON_PATH): Json {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** One directory for the cloud assemblies (and zips) a test file makes, removed after the file. */
let assemblies: string | undefined;
function assemblyRoot(): string {
  assemblies ??= mkdtempSync(path.join(tmpdir(), 'mediaflow-cdk-test-'));
  return assemblies;
}
function assemblyDir(): string {
  return mkdtempSync(path.join(assemblyRoot(), 'app-'));
}
afterAll(() => {
  if (assemblies !== undefined) rmSync(assemblies, { recursive: true, force: true });
});

/**
 * A zip of empty files with these names (stored, no compression), in a
 * directory removed after the test file: a stand-in for a layer zip.
 */
export function writeTestZip(name: string, entries: string[]): string {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const fileName = Buffer.from(entry, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); // local file header
    local.writeUInt16LE(10, 4); // version needed
    // flags, method (stored), time, date, CRC-32 (of nothing: 0) and sizes stay 0
    local.writeUInt16LE(fileName.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); // central directory header
    central.writeUInt16LE(0x031e, 4); // made by: Unix, 3.0
    central.writeUInt16LE(10, 6);
    central.writeUInt16LE(fileName.length, 28);
    central.writeUInt32LE(0o100755 * 0x10000, 38); // external attributes: mode 755
    central.writeUInt32LE(offset, 42);
    locals.push(local, fileName);
    centrals.push(central, fileName);
    offset += local.length + fileName.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  const file = path.join(mkdtempSync(path.join(assemblyRoot(), 'zip-')), name);
  writeFileSync(file, Buffer.concat([...locals, cd, end]));
  return file;
}

/** Synthesizes the CDK stack (bundling skipped) with context values named like SAM parameters. */
export function synthCdk(context: Record<string, unknown> = {}): Template {
  const app = new App({ outdir: assemblyDir(), context: { 'aws:cdk:bundling-stacks': [], ...context } });
  return Template.fromStack(buildApp(app));
}

// ---------------------------------------------------------------------------
// Evaluating the SAM template's parameters and conditions
// ---------------------------------------------------------------------------

const NO_VALUE = Symbol('AWS::NoValue');

/**
 * The template with parameters substituted (defaults unless overridden),
 * conditions decided, Fn::If / Fn::FindInMap / AWS::NoValue applied and
 * resources whose condition is false removed. References to resources and
 * pseudo parameters other than AWS::NoValue are kept.
 */
export function evaluateSam(template: Json, overrides: Record<string, string | number> = {}): Json {
  const { condition, evaluate } = evaluator(template, overrides);
  const resources: Json = {};
  for (const [id, resource] of Object.entries<Json>(template.Resources)) {
    if (resource.Condition && !condition(resource.Condition)) continue;
    resources[id] = evaluate(resource);
  }
  const outputs: Json = {};
  for (const [id, output] of Object.entries<Json>(template.Outputs ?? {})) {
    if (output.Condition && !condition(output.Condition)) continue;
    outputs[id] = evaluate(output);
  }
  return { ...template, Resources: resources, Outputs: outputs, Conditions: undefined };
}

/**
 * The value of one of the template's conditions under the parameters (defaults
 * unless overridden), as CloudFormation would decide it.
 */
export function conditionValue(
  template: Json,
  name: string,
  overrides: Record<string, string | number> = {},
): boolean {
  return evaluator(template, overrides).condition(name);
}

/**
 * The assertions of the template's Rules that fail under the parameters, as
 * "RuleName: AssertDescription" (CloudFormation refuses such a deployment).
 */
export function failedRules(template: Json, overrides: Record<string, string | number> = {}): string[] {
  const { evalCondition } = evaluator(template, overrides);
  const failed: string[] = [];
  for (const [name, rule] of Object.entries<Json>(template.Rules ?? {})) {
    if (rule.RuleCondition !== undefined && !evalCondition(rule.RuleCondition)) continue;
    for (const a of rule.Assertions) {
      if (!evalCondition(a.Assert)) failed.push(`${name}: ${a.AssertDescription}`);
    }
  }
  return failed;
}

/** Parameter values, and condition and value evaluation, for evaluateSam and failedRules. */
function evaluator(template: Json, overrides: Record<string, string | number>) {
  const params: Record<string, string> = {};
  for (const [name, spec] of Object.entries<Json>(template.Parameters ?? {})) {
    const value = name in overrides ? overrides[name] : spec.Default;
    if (value === undefined) throw new Error(`parameter ${name} has no value`);
    params[name] = String(value);
  }
  for (const name of Object.keys(overrides)) {
    if (!(name in params)) throw new Error(`unknown parameter ${name}`);
  }
  const numericParams = new Set(
    Object.entries<Json>(template.Parameters ?? {})
      .filter(([, spec]) => spec.Type === 'Number')
      .map(([name]) => name),
  );
  const conditions: Record<string, boolean> = {};
  const condition = (name: string): boolean => {
    if (!(name in conditions)) {
      const expr = template.Conditions?.[name];
      if (expr === undefined) throw new Error(`unknown condition ${name}`);
      conditions[name] = evalCondition(expr);
    }
    return conditions[name];
  };
  const evalCondition = (expr: Json): boolean => {
    if (expr?.Condition !== undefined) return condition(expr.Condition);
    if (expr?.['Fn::Equals']) {
      const [a, b] = expr['Fn::Equals'].map((x: Json) => String(evaluate(x)));
      return a === b;
    }
    if (expr?.['Fn::Not']) return !evalCondition(expr['Fn::Not'][0]);
    if (expr?.['Fn::And']) return expr['Fn::And'].every(evalCondition);
    if (expr?.['Fn::Or']) return expr['Fn::Or'].some(evalCondition);
    throw new Error(`cannot evaluate condition ${JSON.stringify(expr)}`);
  };
  const evaluate = (node: Json): Json => {
    if (Array.isArray(node)) {
      return node.map(evaluate).filter((x) => x !== NO_VALUE);
    }
    if (node === null || typeof node !== 'object') return node;
    const keys = Object.keys(node);
    if (keys.length === 1) {
      const [key] = keys;
      const arg = node[key];
      if (key === 'Ref') {
        if (arg === 'AWS::NoValue') return NO_VALUE;
        if (arg in params) return numericParams.has(arg) ? Number(params[arg]) : params[arg];
        return node;
      }
      if (key === 'Fn::If') {
        const [name, yes, no] = arg;
        return evaluate(condition(name) ? yes : no);
      }
      if (key === 'Fn::FindInMap') {
        const [map, top, second] = arg.map(evaluate);
        const value = template.Mappings?.[map]?.[String(top)]?.[String(second)];
        if (value === undefined) throw new Error(`no mapping ${map}/${top}/${second}`);
        return value;
      }
      if (key === 'Fn::Sub') {
        // Substitute parameters; keep resource and pseudo-parameter references.
        const [text, vars] = typeof arg === 'string' ? [arg, {}] : arg;
        const replaced = text.replace(/\$\{([^}!.]+)\}/g, (whole: string, name: string) =>
          name in params && !(name in vars) ? params[name] : whole,
        );
        if (Object.keys(vars).length === 0) {
          // Only parameters: the string itself (as conditions compare it).
          return replaced.includes('${') ? { 'Fn::Sub': replaced } : replaced;
        }
        return { 'Fn::Sub': [replaced, evaluate(vars)] };
      }
      if (key === 'Fn::Split') {
        // A literal delimiter (CloudFormation takes no function there).
        const [delimiter, source] = [arg[0], evaluate(arg[1])];
        if (typeof delimiter !== 'string' || delimiter === '') throw new Error(`bad Fn::Split ${JSON.stringify(arg)}`);
        return typeof source === 'string' ? source.split(delimiter) : { 'Fn::Split': [delimiter, source] };
      }
      if (key === 'Fn::Select') {
        const [index, list] = [evaluate(arg[0]), evaluate(arg[1])];
        if (!Array.isArray(list)) return { 'Fn::Select': [index, list] };
        // CloudFormation fails the stack on an index out of range.
        if (!(Number(index) >= 0 && Number(index) < list.length)) {
          throw new Error(`Fn::Select index ${index} out of range for ${JSON.stringify(list)}`);
        }
        return list[Number(index)];
      }
    }
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      const evaluated = evaluate(value);
      if (evaluated !== NO_VALUE) out[key] = evaluated;
    }
    return out;
  };
  return { condition, evalCondition, evaluate };
}

// ---------------------------------------------------------------------------
// The canonical model
// ---------------------------------------------------------------------------

/**
 * The worker a resource belongs to, as the prefix of its canonical name: ""
 * for on-upload (and the shared buckets and topic), "Transcode" for the video
 * worker, "Backfill" for the backfill at scale (inventory bucket, state
 * machine, its role and log group). Both tools name them so: SAM's
 * Transcode* and Backfill* logical IDs, CDK's constructs "Transcode" and
 * "Backfill".
 */
export function workerOf(logicalId: string): string {
  for (const prefix of ['Transcode', 'Backfill']) if (logicalId.startsWith(prefix)) return prefix;
  return '';
}

/** Gives every resource a role-based name so SAM and CDK logical IDs compare equal. */
function canonicalNames(resources: Json): Record<string, string> {
  const names: Record<string, string> = {};
  const byType = (type: string) => Object.entries<Json>(resources).filter(([, r]) => r.Type === type);
  const refId = (value: Json): string | undefined => value?.Ref ?? value?.['Fn::GetAtt']?.[0];

  for (const [id, r] of byType('AWS::S3::Bucket')) {
    if (workerOf(id) === 'Backfill') names[id] = 'BackfillInventoryBucket';
    else if (id.startsWith('AccessLog')) names[id] = 'AccessLogBucket';
    else names[id] = r.Properties?.NotificationConfiguration ? 'SourceBucket' : 'OutputBucket';
  }
  const functions = [...byType('AWS::Serverless::Function'), ...byType('AWS::Lambda::Function')];
  for (const [id] of functions) names[id] = `${workerOf(id)}Function`;
  for (const [id, r] of byType('AWS::SQS::Queue')) {
    names[id] = `${workerOf(id)}${r.Properties?.RedrivePolicy ? 'Queue' : 'DeadLetterQueue'}`;
  }
  for (const [id] of byType('AWS::IAM::Role')) names[id] = `${workerOf(id)}Role`;
  for (const [id] of byType('AWS::IAM::Policy')) names[id] = `${workerOf(id)}RolePolicy`;
  for (const [id] of byType('AWS::Logs::LogGroup')) names[id] = `${workerOf(id)}LogGroup`;
  for (const [id] of byType('AWS::SNS::Topic')) names[id] = 'AlarmTopic';
  for (const [id] of byType('AWS::SNS::TopicPolicy')) names[id] = 'AlarmTopicPolicy';
  for (const [id] of byType('AWS::SNS::Subscription')) names[id] = 'AlarmSubscription';
  for (const [id] of byType('AWS::Lambda::EventSourceMapping')) names[id] = `${workerOf(id)}EventSourceMapping`;
  for (const [id] of byType('AWS::Lambda::LayerVersion')) names[id] = `${workerOf(id)}FfmpegLayer`;
  for (const [id] of byType('AWS::StepFunctions::StateMachine')) names[id] = `${workerOf(id)}StateMachine`;
  for (const [id] of byType('AWS::CloudFront::OriginAccessControl')) names[id] = 'DeliveryOriginAccessControl';
  for (const [id] of byType('AWS::CloudFront::CachePolicy')) names[id] = 'DeliveryCachePolicy';
  for (const [id] of byType('AWS::CloudFront::Distribution')) names[id] = 'DeliveryDistribution';
  for (const [id] of byType('AWS::CloudWatch::Dashboard')) names[id] = 'Dashboard';
  // SAM only: exists only when the prefixes overlap, to fail the deployment.
  for (const [id] of byType('AWS::SSM::Parameter')) names[id] = 'SingleBucketPrefixesOverlap';
  for (const [id, r] of byType('AWS::S3::BucketPolicy')) names[id] = `${names[refId(r.Properties.Bucket)!]}Policy`;
  for (const [id, r] of byType('AWS::SQS::QueuePolicy')) names[id] = `${names[refId(r.Properties.Queues[0])!]}Policy`;
  for (const [id, r] of byType('AWS::CloudWatch::Alarm')) {
    names[id] = `${workerOf(id)}${r.Properties.MetricName}Alarm`;
  }
  const seen = new Map<string, string>();
  for (const [id, name] of Object.entries(names)) {
    if (seen.has(name)) throw new Error(`two resources map to ${name}: ${seen.get(name)} and ${id}`);
    seen.set(name, id);
  }
  return names;
}

/**
 * Rewrites intrinsic functions that build strings (Ref, GetAtt, Sub, Join and
 * the stack-UUID idiom) into one flat string with ${Name} placeholders, using
 * canonical resource names, so "${SourceBucket.Arn}/*" from SAM's Fn::Sub and
 * CDK's Fn::Join compare equal.
 */
function flatten(node: Json, names: Record<string, string>): Json {
  const canon = (id: string) => names[id] ?? id;
  const flat = (value: Json): string | undefined => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number') return String(value);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    const keys = Object.keys(value);
    if (keys.length !== 1) return undefined;
    const arg = value[keys[0]];
    switch (keys[0]) {
      case 'Ref':
        return `\${${canon(arg)}}`;
      case 'Fn::GetAtt':
        return `\${${canon(arg[0])}.${arg[1]}}`;
      case 'Fn::Join': {
        const parts = arg[1].map(flat);
        return parts.every((p: string | undefined) => p !== undefined) ? parts.join(arg[0]) : undefined;
      }
      case 'Fn::Select': {
        const split = arg[1]?.['Fn::Split'];
        if (arg[0] === 2 && split?.[0] === '/' && split?.[1]?.Ref === 'AWS::StackId') return '${StackUuid}';
        return undefined;
      }
      case 'Fn::Sub': {
        const [text, vars] = typeof arg === 'string' ? [arg, {}] : arg;
        return text.replace(/\$\{([^}!]+)\}/g, (_: string, name: string) => {
          if (name in vars) return flat(vars[name]) ?? `\${${name}}`;
          const [id, attr] = name.split(/\.(.*)/s, 2);
          return attr ? `\${${canon(id)}.${attr}}` : `\${${canon(id)}}`;
        });
      }
      default:
        return undefined;
    }
  };
  const walk = (value: Json): Json => {
    if (typeof value === 'number') return value;
    const f = flat(value);
    if (f !== undefined) return f;
    if (Array.isArray(value)) return value.map(walk);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
  };
  return walk(node);
}

/** JSON with object keys sorted: a sort key that ignores key order. */
export function stableStringify(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  return `{${Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`)
    .join(',')}}`;
}

/** Policy statements without Sids, actions sorted, "*" principals spelled one way, sorted. */
export function canonicalStatements(statements: Json[]): Json[] {
  return statements
    .map((s) => {
      const { Sid: _sid, ...rest } = s;
      const out: Json = { ...rest };
      out.Action = [s.Action].flat().sort();
      if (out.Resource !== undefined) out.Resource = [s.Resource].flat().sort();
      if (out.Principal === '*' || out.Principal?.AWS === '*') out.Principal = '*';
      return out;
    })
    .sort((a, b) => stableStringify(a).localeCompare(stableStringify(b)));
}

/**
 * Reduces a template (SAM evaluated with evaluateSam, or CDK synthesized) to
 * what the stack does: buckets, queues, policies, function, event source
 * mapping, alarms, topic and outputs, keyed by role rather than logical ID.
 */
export function canonicalModel(template: Json): Json {
  const resources: Json = template.Resources;
  const names = canonicalNames(resources);
  const flat: Json = flatten(resources, names);
  const model: Json = { resources: {}, outputs: {} };
  const put = (name: string, value: Json) => {
    model.resources[name] = value;
  };
  /** IAM statements per worker prefix ("" for on-upload). */
  const functionStatements: Record<string, Json[]> = {};
  const addStatements = (id: string, statements: Json[]) => {
    (functionStatements[workerOf(id)] ??= []).push(...statements);
  };
  const subscriptions: Json[] = [];

  for (const [id, r] of Object.entries<Json>(flat)) {
    const name = names[id];
    const p = r.Properties ?? {};
    switch (r.Type) {
      case 'AWS::S3::Bucket': {
        const bucket: Json = { ...p, DeletionPolicy: r.DeletionPolicy, UpdateReplacePolicy: r.UpdateReplacePolicy };
        // The order of the notifications means nothing to S3.
        const configurations = p.NotificationConfiguration?.QueueConfigurations;
        if (configurations) {
          bucket.NotificationConfiguration = {
            ...p.NotificationConfiguration,
            QueueConfigurations: [...configurations].sort((a, b) =>
              stableStringify(a).localeCompare(stableStringify(b)),
            ),
          };
        }
        put(name, bucket);
        break;
      }
      case 'AWS::S3::BucketPolicy':
      case 'AWS::SQS::QueuePolicy':
      case 'AWS::SNS::TopicPolicy':
        put(name, canonicalStatements(p.PolicyDocument.Statement));
        break;
      case 'AWS::SQS::Queue':
      case 'AWS::Logs::LogGroup':
        put(name, { ...p, DeletionPolicy: r.DeletionPolicy ?? 'Delete' });
        break;
      case 'AWS::IAM::Role':
        put(name, {
          AssumeRolePolicyDocument: canonicalStatements(p.AssumeRolePolicyDocument.Statement),
          Description: p.Description,
          ManagedPolicyArns: p.ManagedPolicyArns ?? [],
        });
        for (const policy of p.Policies ?? []) addStatements(id, policy.PolicyDocument.Statement);
        break;
      case 'AWS::IAM::Policy':
        addStatements(id, p.PolicyDocument.Statement);
        break;
      case 'AWS::Serverless::Function': {
        const events = Object.values<Json>(p.Events ?? {});
        if (events.length !== 1 || events[0].Type !== 'SQS') throw new Error('expected exactly one SQS event');
        const e = events[0].Properties;
        const { Queue, ...rest } = e;
        put(`${workerOf(id)}EventSourceMapping`, { EventSourceArn: Queue, FunctionName: `\${${name}}`, ...rest });
        put(name, functionModel(p));
        break;
      }
      case 'AWS::Lambda::Function':
        put(name, functionModel(p));
        break;
      case 'AWS::Lambda::EventSourceMapping':
        put(name, p);
        break;
      case 'AWS::Lambda::LayerVersion':
        put(name, { ...p, DeletionPolicy: r.DeletionPolicy, UpdateReplacePolicy: r.UpdateReplacePolicy });
        break;
      case 'AWS::StepFunctions::StateMachine':
        // Substitutions are strings to CloudFormation (SAM's evaluated Number
        // parameters are numbers here).
        put(name, {
          ...p,
          DefinitionSubstitutions: Object.fromEntries(
            Object.entries<Json>(p.DefinitionSubstitutions ?? {}).map(([k, v]) => [k, String(v)]),
          ),
        });
        break;
      case 'AWS::CloudWatch::Alarm': {
        const { AlarmDescription: _d, ...rest } = p;
        put(name, { ...rest, AlarmActions: rest.AlarmActions ?? [], OKActions: rest.OKActions ?? [] });
        break;
      }
      case 'AWS::SNS::Topic':
        subscriptions.push(...(p.Subscription ?? []));
        put(name, { DisplayName: p.DisplayName });
        break;
      case 'AWS::SNS::Subscription':
        subscriptions.push({ Protocol: p.Protocol, Endpoint: p.Endpoint });
        break;
      case 'AWS::CloudFront::OriginAccessControl':
      case 'AWS::CloudFront::CachePolicy':
      case 'AWS::CloudFront::Distribution':
      case 'AWS::SSM::Parameter':
        put(name, { ...p, DeletionPolicy: r.DeletionPolicy ?? 'Delete' });
        break;
      case 'AWS::CloudWatch::Dashboard':
        // The body is JSON text: compared parsed (SAM's whitespace is not CDK's).
        put(name, { DashboardName: p.DashboardName, DashboardBody: JSON.parse(p.DashboardBody) });
        break;
      case 'AWS::CDK::Metadata':
        break;
      default:
        throw new Error(`no canonical form for ${r.Type} (${id})`);
    }
  }
  for (const [worker, statements] of Object.entries(functionStatements)) {
    model.resources[`${worker}RoleStatements`] = canonicalStatements(statements);
  }
  if (subscriptions.length > 0) model.resources.AlarmSubscriptions = subscriptions;
  for (const [id, output] of Object.entries<Json>(template.Outputs ?? {})) {
    model.outputs[id] = flatten(output.Value, names);
  }
  return model;
}

function functionModel(p: Json): Json {
  return {
    Runtime: p.Runtime,
    Handler: p.Handler,
    Architectures: p.Architectures,
    MemorySize: p.MemorySize,
    Timeout: p.Timeout,
    EphemeralStorage: p.EphemeralStorage,
    Layers: p.Layers,
    Role: p.Role,
    // A SAM String parameter (it may be empty) vs a CDK number.
    ReservedConcurrentExecutions:
      p.ReservedConcurrentExecutions === undefined ? undefined : Number(p.ReservedConcurrentExecutions),
    LoggingConfig: p.LoggingConfig,
    // SAM's Tracing is Lambda's TracingConfig Mode.
    TracingConfig: p.TracingConfig ?? (p.Tracing === undefined ? undefined : { Mode: p.Tracing }),
    Environment: p.Environment,
    Description: p.Description,
  };
}


/**
 * The canonical names of the resources the source bucket is created after:
 * its DependsOn and every resource its properties reference.
 */
export function sourceBucketDependencies(template: Json): string[] {
  const resources: Json = template.Resources;
  const names = canonicalNames(resources);
  const [id, bucket] = Object.entries<Json>(resources).find(
    ([, r]) => r.Type === 'AWS::S3::Bucket' && r.Properties?.NotificationConfiguration,
  )!;
  const found = new Set<string>([bucket.DependsOn ?? []].flat());
  const walk = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      if (typeof node.Ref === 'string') found.add(node.Ref);
      if (Array.isArray(node['Fn::GetAtt'])) found.add(node['Fn::GetAtt'][0]);
      Object.values(node).forEach(walk);
    }
  };
  walk(bucket.Properties);
  found.delete(id);
  return [...found].filter((ref) => ref in resources).map((ref) => names[ref]).sort();
}

/**
 * Every resource's checkov suppressions (Metadata checkov skip), by canonical
 * name, sorted by check id.
 */
export function checkovSkips(template: Json): Record<string, { id: string; comment: string }[]> {
  const names = canonicalNames(template.Resources);
  const out: Record<string, { id: string; comment: string }[]> = {};
  for (const [id, r] of Object.entries<Json>(template.Resources)) {
    const skip = r.Metadata?.checkov?.skip;
    if (skip === undefined) continue;
    out[names[id] ?? id] = [...skip].sort((a: Json, b: Json) => a.id.localeCompare(b.id));
  }
  return out;
}

/** Every resource's cfn-lint ignore_checks (Metadata cfn-lint config), by canonical name, sorted. */
export function lintIgnores(template: Json): Record<string, string[]> {
  const names = canonicalNames(template.Resources);
  const out: Record<string, string[]> = {};
  for (const [id, r] of Object.entries<Json>(template.Resources)) {
    const ignore = r.Metadata?.['cfn-lint']?.config?.ignore_checks;
    if (ignore === undefined) continue;
    out[names[id] ?? id] = [...ignore].sort();
  }
  return out;
}
