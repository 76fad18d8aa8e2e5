#!/usr/bin/env -S npx tsx
/**
 * The mediaflow CDK app: one stack, configured with CDK context values named
 * like the SAM template's parameters, e.g.
 *
 *   npx cdk deploy -c OutputPrefix=media/ -c MemorySize=3008
 *   npx cdk deploy -c VariantsConfigFile=../../mediaflow.toml
 *   npx cdk deploy -c StackName=mediaflow-staging
 *   npx cdk deploy -c FfmpegLayerZip=../layers/ffmpeg/dist/ffmpeg-arm64.zip
 *
 * Defaults and constraints: lib/parameters.ts (the same as infra/sam/template.yaml).
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';

buildApp(new App());
