/**
 * The least-privilege IAM policy for egw: exactly the EC2 actions the code calls, derived from the
 * port's method → action table ({@link EC2_CALLS}), so it cannot drift from the code. Tagging at creation
 * needs `ec2:CreateTags` as well (EC2 authorizes the tags of a create separately); it is granted only for
 * `CreateNetworkInterface` through the `ec2:CreateAction` condition, so egw cannot retag existing
 * resources. Pure.
 */
import { EC2_CALLS, EC2_METHODS } from './ec2-port.js';

/** An IAM policy document. */
export interface IamPolicy {
  Version: '2012-10-17';
  Statement: IamStatement[];
}

export interface IamStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: '*';
  Condition?: Record<string, Record<string, string[]>>;
}

/** Every IAM action egw needs, sorted, without duplicates (the emulator's allow-list for the tests). */
export function iamPolicyActions(): string[] {
  return [...new Set(EC2_METHODS.flatMap((m) => EC2_CALLS[m].iam))].sort();
}

/**
 * The policy: one statement with every action the code calls, and `ec2:CreateTags` restricted to
 * tag-on-create of the actions that create resources with tags.
 */
export function iamPolicy(): IamPolicy {
  const direct = [...new Set(EC2_METHODS.map((m) => `ec2:${EC2_CALLS[m].action}`))].sort();
  const taggingCreates = EC2_METHODS.filter((m) => EC2_CALLS[m].iam.includes('ec2:CreateTags') && EC2_CALLS[m].action !== 'CreateTags').map((m) => EC2_CALLS[m].action);
  const statements: IamStatement[] = [{ Sid: 'EgwEc2Fabric', Effect: 'Allow', Action: direct, Resource: '*' }];
  if (taggingCreates.length > 0 && !direct.includes('ec2:CreateTags')) {
    statements.push({
      Sid: 'EgwTagOnCreate',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: '*',
      Condition: { StringEquals: { 'ec2:CreateAction': [...new Set(taggingCreates)].sort() } },
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}
